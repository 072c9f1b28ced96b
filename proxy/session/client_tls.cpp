// TLS with the client, when the front door asked for it (STARTTLS or Direct TLS terminated at
// the proxy): ciphertext in, plaintext on to the door (then the backend); bytes for the client
// encrypted. The door decides when; this file only carries the bytes.
#include "session/host.hpp"
#include "session/session.hpp"
#include "tls/tls_stream.hpp"
#include "util/log.hpp"

namespace xs::session {

void Session::start_tls(std::string_view sni_fallback) {
    tls_ = tls::TlsStream::accept(cfg().certs, sni_fallback);
    if (!tls_) log::die("TLS: cannot allocate a session (out of memory)");
    mark_ns_ = uv_hrtime();
}

// Ciphertext from the client: decrypt, send what TLS wants sent, hand the plaintext on.
void Session::on_tls_bytes(const char* data, std::size_t len) {
    bool was_done = tls_->handshake_done();
    std::string_view in(data, len);
    if (!was_done && door_) {
        in = door_->before_tls(in);
        if (in.empty()) return;
    }
    std::string& plain = host_.tls_plain();
    std::string& out = host_.tls_out();
    plain.clear();
    out.clear();
    tls::TlsState st = tls_->feed(in, plain, out);
    if (!out.empty()) send(kClient, out.data(), out.size());
    if (st == tls::TlsState::Failed) {
        tls_failed();
        return;
    }
    if (!was_done && tls_->handshake_done()) {
        listener_cell_->tls_handshakes[tls::TlsFailure::None].add();
        listener_cell_->tls_handshake_seconds.observe(seconds_since(mark_ns_));
        if (door_) {
            Verdict v = door_->tls_ready(tls_->alpn());
            if (v.step != Step::NeedMore) {
                on_verdict(std::move(v));
                return;
            }
        }
    }
    // plain is the host's scratch: on_client_bytes may use tls_out() but not tls_plain().
    if (!plain.empty()) on_client_bytes(plain.data(), plain.size());
    if (st == tls::TlsState::Closed) side_finished(kClient, UV_EOF);  // close_notify (a no-op once closed)
}

// Bytes for the client: encrypted when TLS with the client is up.
void Session::to_client(const char* data, std::size_t len) {
    if (!tls_) {
        send(kClient, data, len);
        return;
    }
    std::string& out = host_.tls_out();
    out.clear();
    bool ok = tls_->write(std::string_view(data, len), out);
    if (!out.empty()) send(kClient, out.data(), out.size());
    if (!ok) {
        log::debug("TLS write failed on ", listener().name, ": ", tls_->error());
        end_later(EndReason::TlsFailed);
    }
}

void Session::close_tls() {
    std::string& out = host_.tls_out();
    out.clear();
    tls_->close(out);
    if (!out.empty()) send(kClient, out.data(), out.size());
}

void Session::tls_failed() {
    auto f = tls_->failure();
    log::debug("TLS failed on ", listener().name, ": ", tls::to_string(f), ": ", tls_->error());
    if (!tls_->handshake_done()) listener_cell_->tls_handshakes[f].add();
    finish(EndReason::TlsFailed);
}

}  // namespace xs::session
