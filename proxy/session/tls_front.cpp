// The TLS front of a session: Direct TLS passthrough (route on the ClientHello's SNI), and TLS
// termination (STARTTLS offered and required, or Direct TLS), after which the session sniffs the
// client's restarted stream header in plaintext and relays plaintext to the backend. Also the
// PROXY v2 header written to backends that ask for it.
#include <netinet/in.h>

#include <array>
#include <cstring>

#include "app/worker.hpp"
#include "routing/proxy_v2.hpp"
#include "session/session.hpp"
#include "util/log.hpp"

namespace xs::session {

namespace pv2 = routing::proxy_v2;
using routing::StreamCondition;

void Session::begin_tls_front() {
    const auto& l = cfg_->listeners[listener_];
    start_timer(cfg_->proxy.header_timeout);
    if (l.direct_tls && l.tls == config::TlsMode::Terminate) {
        start_handshake("");
    } else if (l.direct_tls) {
        hello_ = std::make_unique<routing::ClientHelloSniffer>();
    } else {
        sniffer_ = std::make_unique<routing::StreamHeaderSniffer>(cfg_->proxy.max_header_bytes);
    }
    if (state_ != State::Closed) set_reading(kClient, true);
}

// Direct TLS, passthrough: the ClientHello's SNI decides the route; ALPN, when sent, must offer
// xmpp-client (XEP-0368). The raw bytes are replayed; TLS runs end to end with the backend.
void Session::on_hello_bytes(const char* data, std::size_t len) {
    replay_.append(data, len);
    switch (hello_->feed(std::string_view(data, len))) {
        case routing::HelloStatus::NeedMore:
            return;
        case routing::HelloStatus::Reject:
            log::debug("Direct TLS: not a ClientHello: ", hello_->detail());
            finish(EndReason::NotXmpp);
            return;
        case routing::HelloStatus::Done:
            break;
    }
    const auto& info = hello_->info();
    if (info.has_alpn && !info.offers_alpn("xmpp-client")) {
        log::debug("Direct TLS: ALPN offered without xmpp-client");
        finish(EndReason::NotXmpp);
        return;
    }
    listener_cell_->header_seconds.observe(seconds_since(start_ns_));
    std::string sni = info.sni;
    bool has_sni = info.has_sni;
    hello_.reset();
    if (!route_domain(sni, has_sni, false)) return;
    connect_next();
}

// STARTTLS: answer the client's first header with our own header and features.
void Session::offer_starttls() {
    std::string rest = replay_.substr(sniffer_->header().consumed);
    sniffer_.reset();
    std::string().swap(replay_);  // the backend sees only the stream restarted inside TLS
    std::string offer = routing::starttls_offer(domain_, content_ns_, worker_.stream_id());
    header_sent_ = true;
    set_state(State::Negotiating);
    starttls_ = std::make_unique<routing::StartTlsReader>();
    send(kClient, offer.data(), offer.size());
    if (state_ == State::Negotiating && !rest.empty()) on_negotiation_bytes(rest.data(), rest.size());
}

void Session::on_negotiation_bytes(const char* data, std::size_t len) {
    switch (starttls_->feed(std::string_view(data, len))) {
        case routing::StartTlsStatus::NeedMore:
            return;
        case routing::StartTlsStatus::Reject: {
            StreamCondition c = starttls_->condition();
            std::string why = starttls_->detail();
            refuse(c, domain_, why);
            return;
        }
        case routing::StartTlsStatus::Proceed:
            break;
    }
    // starttls_ stays until the ClientHello starts: it drops whitespace sent before it.
    std::string_view proceed = routing::starttls_proceed();
    send(kClient, proceed.data(), proceed.size());
    if (state_ == State::Negotiating) start_handshake(domain_);
}

void Session::start_handshake(std::string_view domain) {
    tls_ = tls::TlsStream::accept(cfg_->certs, domain);
    if (!tls_) {
        log::error("TLS: cannot allocate a session");
        finish(EndReason::TlsFailed);
        return;
    }
    mark_ns_ = uv_hrtime();
    set_state(State::Handshaking);
}

// Ciphertext from the client: decrypt, send what TLS wants sent, hand the plaintext on.
void Session::on_tls_bytes(const char* data, std::size_t len) {
    if (starttls_) {
        std::string_view v = starttls_->tls_bytes(std::string_view(data, len));
        if (v.empty()) return;
        starttls_.reset();
        data = v.data();
        len = v.size();
    }
    std::string& plain = worker_.tls_plain();
    std::string& out = worker_.tls_out();
    plain.clear();
    out.clear();
    bool was_done = tls_->handshake_done();
    tls::TlsState st = tls_->feed(std::string_view(data, len), plain, out);
    if (!out.empty()) {
        send(kClient, out.data(), out.size());
        if (state_ == State::Closed) return;
    }
    if (st == tls::TlsState::Failed) {
        tls_failed();
        return;
    }
    if (!was_done && tls_->handshake_done()) {
        listener_cell_->tls_handshakes[0].add();
        listener_cell_->tls_handshake_seconds.observe(
            seconds_since(mark_ns_));
        sniffer_ = std::make_unique<routing::StreamHeaderSniffer>(cfg_->proxy.max_header_bytes);
        header_sent_ = false;  // the client restarts the stream inside TLS
        set_state(State::Sniffing);
    }
    if (!plain.empty()) {
        // plain is the worker's scratch: on_client_bytes may use tls_out() but not tls_plain().
        on_client_bytes(plain.data(), plain.size());
        if (state_ == State::Closed) return;
    }
    if (st == tls::TlsState::Closed) side_finished(kClient, UV_EOF);  // close_notify
}

// Bytes for the client: encrypted when the proxy terminates TLS.
void Session::to_client(const char* data, std::size_t len) {
    if (!tls_) {
        send(kClient, data, len);
        return;
    }
    std::string& out = worker_.tls_out();
    out.clear();
    bool ok = tls_->write(std::string_view(data, len), out);
    if (!out.empty()) send(kClient, out.data(), out.size());
    if (!ok && state_ != State::Closed) tls_failed();
}

void Session::close_tls() {
    std::string& out = worker_.tls_out();
    out.clear();
    tls_->close(out);
    if (!out.empty()) send(kClient, out.data(), out.size());
}

void Session::tls_failed() {
    auto f = tls_->failure();
    log::debug("TLS failed on ", cfg_->listeners[listener_].name, ": ", tls::to_string(f), ": ", tls_->error());
    if (!tls_->handshake_done()) listener_cell_->tls_handshakes[static_cast<std::size_t>(f)].add();
    finish(EndReason::TlsFailed);
}

namespace {

pv2::Endpoint endpoint_of(const sockaddr* sa) {
    if (sa->sa_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(sa);
        std::array<std::uint8_t, 4> b{};
        std::memcpy(b.data(), &a->sin_addr, 4);
        return pv2::Endpoint::v4(b, ntohs(a->sin_port));
    }
    auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    std::array<std::uint8_t, 16> b{};
    std::memcpy(b.data(), &a->sin6_addr, 16);
    return pv2::Endpoint::v6(b, ntohs(a->sin6_port));
}

}  // namespace

// PROXY v2 before the replayed bytes: the client's address, the listener's address, the
// requested domain and, when the proxy terminated TLS, what that TLS was.
bool Session::write_proxy_header() {
    if (!cfg_->backends[backend_index_].proxy_protocol_v2) return true;
    pv2::Header h;
    sockaddr_storage local{};
    int len = sizeof local;
    if (peer_.sin6_family == AF_UNSPEC ||
        uv_tcp_getsockname(&client_, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
        h.local = true;
    } else {
        h.source = endpoint_of(reinterpret_cast<const sockaddr*>(&peer_));
        h.destination = endpoint_of(reinterpret_cast<const sockaddr*>(&local));
    }
    h.authority = domain_;
    if (tls_) {
        pv2::SslInfo ssl;
        ssl.version = std::string(tls_->version());
        ssl.cipher = std::string(tls_->cipher());
        h.ssl = ssl;
        h.alpn = std::string(tls_->alpn());
    }
    std::string bytes;
    std::string why;
    if (!pv2::build(h, bytes, &why)) {
        log::error("PROXY v2 header: ", why);
        return true;  // cannot happen with these fields; send the stream without it
    }
    send(kBackend, bytes.data(), bytes.size());
    return state_ != State::Closed;
}

}  // namespace xs::session
