// Backends: admission, connect with failover to the next candidate, the PROXY v2 header, the
// backend's first answer.
#include <netinet/in.h>

#include <array>
#include <cstring>
#include <utility>

#include "routing/proxy_v2.hpp"
#include "session/host.hpp"
#include "session/session.hpp"
#include "tls/tls_stream.hpp"
#include "upstream/backend_state.hpp"
#include "upstream/idle_pool.hpp"
#include "util/log.hpp"

namespace xs::session {

namespace pv2 = routing::proxy_v2;
using routing::StreamCondition;

// Picks the next candidate that is up, not draining and under its limits; takes an admission
// slot or joins the backend's queue. Down and draining backends are skipped, which is how a hash
// pool moves only a down backend's domains (and moves them back when it recovers).
void Session::connect_next() {
    discard_backend();
    while (next_candidate_ < candidates_.size()) {
        backend_index_ = candidates_[next_candidate_++];
        const auto& b = cfg().backends[backend_index_];
        backend_state_ = snap_->rt->states[backend_index_].get();
        backend_cell_ = host_.stats().backend(b.name);
        if (b.drain || !backend_state_->up()) continue;
        if (b.max_sessions > 0 && backend_state_->sessions() >= b.max_sessions) {
            limited_ = true;
            continue;
        }
        mark_ns_ = uv_hrtime();
        if (door_->continues_session()) {  // not a join: no admission slot
            connect_now();
            return;
        }
        if (backend_state_->try_acquire(b, uv_now(host_.loop()))) {
            holding_slot_ = true;
            connect_now();
            return;
        }
        if (!host_.admission().enqueue(backend_state_, this, b.max_queue)) {
            refuse_admission(metrics::Admission::QueueFull);
            return;
        }
        backend_cell_->queued.add(1);
        set_state(State::Queued);
        start_timer(b.queue_timeout);
        return;
    }
    if (limited_) {
        refuse_admission(metrics::Admission::MaxSessions);
        return;
    }
    log::info("no backend available for ", domain_, " (route ", route_name_, ", ",
              candidates_.size(), " candidate(s))");
    reason_ = EndReason::BackendConnectFailed;
    refuse(StreamCondition::RemoteConnectionFailed, domain_, "no backend available");
}

void Session::admitted() {
    CallbackScope scope(this);
    backend_cell_->queued.add(-1);
    backend_cell_->queue_wait_seconds.observe(seconds_since(mark_ns_));
    holding_slot_ = true;
    connect_now();
}

void Session::refuse_admission(metrics::Admission why) {
    backend_cell_->admission_refusals[why].add();
    std::string text = why == metrics::Admission::QueueTimeout ? "backend busy: waited too long"
                       : why == metrics::Admission::QueueFull  ? "backend busy: queue full"
                                                               : "backend full";
    refuse(listener().see_other_host.empty() ? StreamCondition::PolicyViolation : StreamCondition::SeeOtherHost,
           domain_, text);
}

void Session::connect_now() {
    set_state(State::Connecting);
    mark_ns_ = uv_hrtime();
    const auto& b = cfg().backends[backend_index_];
    // An HTTP request goes on a kept-alive connection to the backend when the pool has one.
    reused_ = false;
    if (door_->exchanges() && !std::exchange(fresh_, false)) {
        if (uv_tcp_t* h = host_.idle_pool().take(upstream::IdlePool::key_of(b.name, b.address_text))) {
            backend_ = h;
            backend_->data = static_cast<upstream::ConnReader*>(this);
            ++open_handles_;
            reused_ = true;
            backend_cell_->reused.add();
            reading_[kBackend] = true;  // the pool kept it reading, through the same callbacks
            on_connected(0);
            return;
        }
    }
    backend_ = new uv_tcp_t{};
    if (uv_tcp_init(host_.loop(), backend_) != 0) log::die("session: uv_tcp_init failed");
    backend_->data = static_cast<upstream::ConnReader*>(this);
    ++open_handles_;
    auto* req = new uv_connect_t{};
    req->data = this;
    if (int rc = uv_tcp_connect(req, backend_, b.address.sa(), on_connect_done); rc != 0) {
        delete req;
        log::warn("backend ", b.name, " (", b.address_text, "): connect: ", uv_strerror(rc));
        backend_failed("connect failed", false);
        return;
    }
    // Read interest from the start: the socket is registered once for writability and
    // readability together (libuv reports the connect first), instead of being registered for
    // writability and then re-registered for reading when the connect completes.
    set_reading(kBackend, true);
    start_timer(cfg().proxy.connect_timeout);
}

void Session::on_connect_done(uv_connect_t* req, int status) {
    auto* self = static_cast<Session*>(req->data);
    uv_stream_t* handle = req->handle;
    delete req;
    // A discarded attempt reports ECANCELED; its session may already be finishing.
    if (status == UV_ECANCELED || handle != reinterpret_cast<uv_stream_t*>(self->backend_)) return;
    CallbackScope scope(self);
    self->on_connected(status);
}

void Session::on_connected(int status) {
    const auto& b = cfg().backends[backend_index_];
    if (status != 0) {
        log::warn("backend ", b.name, " (", b.address_text, "): connect: ", uv_strerror(status));
        backend_failed("connect refused", true);
        return;
    }
    if (!reused_) {
        backend_cell_->connect_seconds.observe(seconds_since(mark_ns_));
        uv_tcp_nodelay(backend_, 1);
    }
    set_state(State::AwaitingBackend);
    // A BOSH poll is held by the backend until it has something to send (up to `wait`).
    start_timer(door_->long_poll() ? cfg().proxy.hold_timeout : cfg().proxy.backend_timeout);
    if (!reused_ && !write_proxy_header()) return;  // a kept-alive connection has had its header
    send(kBackend, replay_.data(), replay_.size());
    // A BOSH poll may be held for `wait` seconds: it is connected and sent, which is all that
    // max_connecting bounds.
    if (door_->long_poll()) release_slot();
}

// The backend answered: bytes flow both ways from now on (for HTTP, until the response ends).
void Session::begin_relay() {
    uv_timer_stop(&timer_);
    reused_ = false;
    release_slot();
    mark_ns_ = 0;  // from now on: when a paused peer was first seen half-closed (probe_paused)
    set_state(State::Relaying);
    count(kBackend, replay_.size());
    std::string().swap(replay_);
    std::vector<std::size_t>().swap(candidates_);
    backend_state_->session_started();
    counted_live_ = true;
    session_cell_ = host_.stats().session(listener().name, route_name_, cfg().backends[backend_index_].name);
    session_cell_->active.add(1);
    session_cell_->total.add();
}

// One attempt failed: count it, mark the backend down at once when health checks watch it
// (passive check), and try the next candidate.
void Session::backend_failed(const char* what, bool passive_down) {
    if (reused_) {
        // A kept-alive connection the backend had closed meanwhile: not the backend's failure.
        // The same candidate again, on a new connection.
        log::debug("backend ", cfg().backends[backend_index_].name, ": pooled connection: ", what);
        reused_ = false;
        fresh_ = true;
        --next_candidate_;
        connect_next();
        return;
    }
    const auto& b = cfg().backends[backend_index_];
    backend_cell_->connect_failures.add();
    if (passive_down && b.check != config::CheckKind::None && backend_state_->mark_down_now())
        log::warn("backend ", b.name, " marked down: ", what, " (passive check)");
    connect_next();
}

void Session::release_slot() {
    if (!holding_slot_) return;
    holding_slot_ = false;
    backend_state_->release();
    host_.admission().pump(backend_state_);
}

void Session::discard_backend() {
    release_slot();
    if (!backend_) return;
    auto* h = reinterpret_cast<uv_handle_t*>(backend_);
    detach_backend();
    uv_close(h, on_backend_close);
}

void Session::on_backend_close(uv_handle_t* h) {
    static_cast<Session*>(static_cast<upstream::ConnReader*>(h->data))->on_handle_closed(h);
}

void Session::park_backend() {
    release_slot();
    uv_tcp_t* h = backend_;
    detach_backend();  // reading or paused: the pool reads it on without a stop and a start
    --open_handles_;  // the pool owns it now
    const auto& b = cfg().backends[backend_index_];
    host_.idle_pool().park(upstream::IdlePool::key_of(b.name, b.address_text), h);
}

void Session::detach_backend() {
    backend_ = nullptr;
    pending_[kBackend] = 0;
    reading_[kBackend] = false;
    finished_[kBackend] = false;
    write_error_[kBackend] = 0;  // that attempt's; the next candidate starts clean
    paused_[kClient] = false;
    paused_[kBackend] = false;
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
// requested domain and, when the proxy terminated TLS, what that TLS was. A backend that asks
// for the header never gets a stream without it: if it cannot be built, the session is refused.
bool Session::write_proxy_header() {
    if (!cfg().backends[backend_index_].proxy_protocol_v2) return true;
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
        log::error("PROXY v2 header for ", domain_, ": ", why);
        refuse(StreamCondition::RemoteConnectionFailed, domain_, "cannot build the PROXY header");
        return false;
    }
    send(kBackend, bytes.data(), bytes.size());
    return true;
}

}  // namespace xs::session
