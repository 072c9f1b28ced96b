// Session lifecycle: accept, the front door's verdicts, routing, timeouts, refusal, finish.
#include "session/session.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "net/ip_limiter.hpp"
#include "session/host.hpp"
#include "session/route_lookup.hpp"
#include "session/session_log.hpp"
#include "tls/tls_stream.hpp"
#include "upstream/backend_state.hpp"
#include "util/log.hpp"

namespace xs::session {

using routing::StreamCondition;

Session::Session(SessionHost& host, std::shared_ptr<const Snapshot> snap, std::size_t listener)
    : host_(host), snap_(std::move(snap)), listener_(listener) {}

void Session::start(int fd, const sockaddr_storage& peer) {
    CallbackScope scope(this);
    start_ns_ = uv_hrtime();
    // Initialising a timer or an AF_UNSPEC TCP handle cannot fail in libuv; if it ever did,
    // nothing would be left to close the session with.
    if (uv_timer_init(host_.loop(), &timer_) != 0 || uv_tcp_init(host_.loop(), &client_) != 0)
        log::die("session: uv_timer_init/uv_tcp_init failed");
    timer_.data = this;
    client_.data = this;
    open_handles_ = 2;
    host_.session_started(this);
    listener_cell_ = host_.stats().listener(listener().name);
    listener_cell_->accepted.add();
    listener_cell_->connections.add(1);
    std::memcpy(&peer_, &peer, peer.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    if (int rc = uv_tcp_open(&client_, fd); rc != 0) {
        log::warn("uv_tcp_open: ", uv_strerror(rc));
        ::close(fd);
        finish(EndReason::ClientError);
        return;
    }
    uv_tcp_nodelay(&client_, 1);
    door_ = make_front_door(DoorContext{cfg(), listener(), host_, peer_ip(), snap_->rt->bosh.get()});
    if (const auto& lim = snap_->rt->limiters[listener_];
        lim && !lim->allow(reinterpret_cast<sockaddr*>(&peer_), uv_now(host_.loop()))) {
        listener_cell_->rate_limited.add();
        refuse(listener().see_other_host.empty() ? StreamCondition::PolicyViolation
                                                 : StreamCondition::SeeOtherHost,
               "", "too many new connections from this address");
        return;
    }
    start_timer(cfg().proxy.header_timeout);
    set_reading(kClient, true);
    on_verdict(door_->start());
}

void Session::cut() {
    CallbackScope scope(this);
    finish(EndReason::Drained);
}

void Session::set_state(State s) {
    if (state_ == s) return;
    if (!allowed(state_, s))
        log::die(std::string("session: transition ") + std::string(to_string(state_)) + " -> " +
                 std::string(to_string(s)) + " is not in the table");
    log::debug("session ", static_cast<const void*>(this), " ", to_string(state_), " -> ", to_string(s));
    state_ = s;
}

void Session::start_timer(config::Millis ms) {
    uv_timer_start(&timer_, on_timer, static_cast<uint64_t>(ms.count()), 0);
}

// What the front door decided about the client's bytes so far.
void Session::on_verdict(Verdict v) {
    if (!v.reply.empty()) to_client(v.reply.data(), v.reply.size());
    switch (v.step) {
        case Step::NeedMore:
            return;
        case Step::StartTls:
            start_tls(v.sni_fallback);
            return;
        case Step::Refuse:
            refuse(v.condition, v.domain, v.detail);
            return;
        case Step::Close:
            log::debug("closing on ", listener().name, " (", door_->name(), "): ", v.detail);
            finish(v.close_reason);
            return;
        case Step::Route:
            listener_cell_->header_seconds.observe(seconds_since(start_ns_));
            route(std::move(v.key), std::move(v.replay));
            return;
    }
}

// The door's key -> a route and its candidates, then the first candidate. The replayed bytes
// stay in replay_, and so does whatever the client sends until the backend answers (bounded:
// see on_client_bytes), so that they can be replayed to the next candidate. The client is still
// read meanwhile, so a client that goes away is noticed at once rather than at the next timeout.
void Session::route(RouteKey key, std::string replay) {
    Lookup l = lookup_route(cfg(), listener(), key.match, key.has_match, key.hash);
    domain_ = std::move(l.domain);
    if (!l.decision) {
        refuse(StreamCondition::HostUnknown, domain_, l.why);
        return;
    }
    route_name_ = l.decision->route_name;
    candidates_ = std::move(l.decision->candidates);
    // Backends with a `vnode` serve only the visitors of that node (?vnode=), the others only
    // requests without one.
    std::erase_if(candidates_, [&](std::size_t b) { return cfg().backends[b].vnode != key.vnode; });
    if (candidates_.empty()) {
        refuse(StreamCondition::HostUnknown, domain_, "no backend of this route serves vnode '" + key.vnode + "'");
        return;
    }
    // A BOSH session's owner first (when it is down, the route's order decides).
    if (!key.pin.empty()) {
        auto it = std::find_if(candidates_.begin(), candidates_.end(),
                               [&](std::size_t b) { return cfg().backends[b].name == key.pin; });
        if (it != candidates_.end()) std::rotate(candidates_.begin(), it, it + 1);
    }
    next_candidate_ = 0;
    replay_ = std::move(replay);
    connect_next();
}

void Session::on_timeout() {
    switch (state_) {
        case State::Opening:
            if (exchanges_ > 0 && door_->idle()) {  // a keep-alive connection with no next request
                finish(EndReason::Idle);
                return;
            }
            refuse(StreamCondition::ConnectionTimeout, domain_, "no complete stream header in time");
            return;
        case State::Queued:
            host_.admission().dequeue(backend_state_, this);
            backend_cell_->queued.add(-1);
            refuse_admission(metrics::Admission::QueueTimeout);
            return;
        case State::Connecting:
        case State::AwaitingBackend: {
            const char* what = state_ == State::Connecting ? "connect timed out" : "no answer to the header in time";
            log::warn("backend ", cfg().backends[backend_index_].name, ": ", what);
            backend_failed(what, true);
            return;
        }
        case State::Closing:
            finish(EndReason::TimedOut);
            return;
        case State::Refusing:
            finish(reason_);
            return;
        case State::Relaying:
            probe_paused();
            return;
        case State::Closed:
            return;
    }
}

// Refuse in the door's protocol: write its refusal (encrypted once TLS is up), then linger:
// keep reading (and dropping) what the client sends until it closes, so that closing does not
// reset the connection before the client has read the refusal. A door that cannot speak now
// (TLS passed through, or mid-handshake) gets a close.
void Session::refuse(StreamCondition c, std::string_view domain, std::string_view detail) {
    condition_ = c;
    refused_ = true;
    if (reason_ != EndReason::BackendConnectFailed) reason_ = EndReason::Refused;
    host_.stats().stream_error(c);
    log::debug("refusing ", domain.empty() ? "-" : domain, ": ", routing::to_string(c), ": ", detail);
    // Build the bytes first: domain and detail may point into state released below.
    std::string bytes;
    if (door_ && (!tls_ || tls_->state() == tls::TlsState::Open)) bytes = door_->refusal(c, domain, detail);
    if (door_) door_->refused(c, *listener_cell_);
    if (bytes.empty()) {
        finish(reason_);
        return;
    }
    discard_backend();
    std::string().swap(replay_);
    set_state(State::Refusing);
    to_client(bytes.data(), bytes.size());
    if (tls_) close_tls();
    set_reading(kClient, true);
    shutdown_side(kClient);
    start_timer(cfg().proxy.close_linger);
}

void Session::finish(EndReason r) {
    if (state_ == State::Closed) return;
    if (state_ == State::Queued) {
        host_.admission().dequeue(backend_state_, this);
        backend_cell_->queued.add(-1);
    }
    reason_ = r;
    log_end();
    host_.stats().ended(r);
    listener_cell_->connections.add(-1);
    end_exchange();  // the session's (or the current HTTP exchange's) counts on its backend
    if (held_) held_->add(-1);
    set_state(State::Closed);
    discard_backend();
    door_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&client_), on_close);
    host_.session_ended(this);
}

// Ends the session when the current callback returns (settle()).
void Session::end_later(EndReason r) {
    if (end_pending_ || state_ == State::Closed) return;
    end_pending_ = true;
    reason_ = r;
}

// Leaving the outermost callback: act on what writes recorded, then on a requested end.
void Session::settle() {
    ++depth_;  // what runs here may record more: the loop takes it too
    while (state_ != State::Closed) {
        Side side = write_error_[kClient] != 0 ? kClient : kBackend;
        int status = write_error_[side];
        if (status == 0) break;
        write_error_[side] = 0;
        side_finished(side, status);
    }
    if (end_pending_) {
        end_pending_ = false;
        finish(reason_);
    }
    --depth_;
}

void Session::log_end() {
    SessionLogEntry e;
    e.client = reinterpret_cast<const sockaddr*>(&peer_);
    e.listener = listener().name;
    e.domain = domain_;
    e.route = route_name_;
    if (backend_state_) e.backend = cfg().backends[backend_index_].name;
    e.duration_ms = (uv_hrtime() - start_ns_) / 1000000;
    e.bytes_to_backend = bytes_[kBackend];
    e.bytes_to_client = bytes_[kClient];
    e.reason = to_string(reason_);
    if (refused_) e.condition = routing::to_string(condition_);
    e.error = is_error(reason_);
    host_.session_log(e);
}

std::string Session::peer_ip() const {
    char buf[INET6_ADDRSTRLEN] = "";
    if (peer_.sin6_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&peer_)->sin_addr, buf, sizeof buf);
    else if (peer_.sin6_family == AF_INET6)
        inet_ntop(AF_INET6, &peer_.sin6_addr, buf, sizeof buf);
    return buf;
}

void Session::on_close(uv_handle_t* h) {
    static_cast<Session*>(h->data)->on_handle_closed(h);
}

void Session::on_handle_closed(uv_handle_t* h) {
    if (h != reinterpret_cast<uv_handle_t*>(&client_) && h != reinterpret_cast<uv_handle_t*>(&timer_))
        delete reinterpret_cast<uv_tcp_t*>(h);
    if (--open_handles_ == 0 && state_ == State::Closed) delete this;
}

void Session::on_timer(uv_timer_t* t) {
    auto* self = static_cast<Session*>(t->data);
    CallbackScope scope(self);
    self->on_timeout();
}

}  // namespace xs::session
