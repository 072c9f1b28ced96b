// Session lifecycle: accept, sniff, route, admission, connect with failover, refuse, finish.
#include "session/session.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "app/worker.hpp"
#include "net/ip_limiter.hpp"
#include "routing/domain.hpp"
#include "routing/route_table.hpp"
#include "routing/stream_error.hpp"
#include "upstream/backend_state.hpp"
#include "util/log.hpp"

namespace xs::session {

using routing::SniffStatus;
using routing::StreamCondition;

std::string_view to_string(State s) {
    switch (s) {
        case State::Sniffing: return "sniffing";
        case State::Negotiating: return "negotiating";
        case State::Handshaking: return "handshaking";
        case State::Queued: return "queued";
        case State::Connecting: return "connecting";
        case State::AwaitingBackend: return "awaiting_backend";
        case State::Relaying: return "relaying";
        case State::Closing: return "closing";
        case State::Refusing: return "refusing";
        case State::Closed: return "closed";
    }
    return "?";
}

std::string_view to_string(EndReason r) {
    switch (r) {
        case EndReason::ClientClosed: return "client_closed";
        case EndReason::BackendClosed: return "backend_closed";
        case EndReason::ClientError: return "client_error";
        case EndReason::BackendError: return "backend_error";
        case EndReason::Refused: return "refused";
        case EndReason::BackendConnectFailed: return "backend_connect_failed";
        case EndReason::NotXmpp: return "not_xmpp";
        case EndReason::TlsFailed: return "tls_failed";
        case EndReason::TimedOut: return "timed_out";
        case EndReason::Drained: return "drained";
    }
    return "?";
}

Session::Session(app::Worker& worker, std::shared_ptr<const config::Config> cfg,
                 std::size_t listener)
    : worker_(worker), cfg_(std::move(cfg)), listener_(listener) {}

void Session::start(int fd, const sockaddr_storage& peer) {
    uv_tcp_init(worker_.loop(), &client_);
    client_.data = this;
    ++open_handles_;
    uv_timer_init(worker_.loop(), &timer_);
    timer_.data = this;
    ++open_handles_;
    start_ns_ = uv_hrtime();
    worker_.session_started(this);
    const auto& listener = cfg_->listeners[listener_];
    listener_cell_ = worker_.stats().listener(listener.name);
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
    if (listener.per_ip_rate > 0) {
        if (!cfg_->limiters[listener_]->allow(reinterpret_cast<sockaddr*>(&peer_), uv_now(worker_.loop()))) {
            listener_cell_->rate_limited.add();
            refuse(listener.see_other_host.empty() ? StreamCondition::PolicyViolation
                                                   : StreamCondition::SeeOtherHost,
                   "", "too many new connections from this address");
            return;
        }
    }
    begin_tls_front();
}

void Session::set_state(State s) {
    if (state_ == s) return;
    log::debug("session ", static_cast<const void*>(this), " ", to_string(state_), " -> ", to_string(s));
    state_ = s;
}

void Session::start_timer(config::Millis ms) {
    uv_timer_start(&timer_, on_timer, static_cast<uint64_t>(ms.count()), 0);
}

void Session::on_header_bytes(const char* data, std::size_t len) {
    replay_.append(data, len);
    switch (sniffer_->feed(std::string_view(data, len))) {
        case SniffStatus::NeedMore:
            return;
        case SniffStatus::TlsClientHello:
            log::debug("TLS ClientHello on plaintext listener ", cfg_->listeners[listener_].name);
            finish(EndReason::NotXmpp);
            return;
        case SniffStatus::Reject:
            refuse(sniffer_->condition(), "", sniffer_->detail());
            return;
        case SniffStatus::Done:
            listener_cell_->header_seconds.observe(
                seconds_since(start_ns_));
            route();
            return;
    }
}

void Session::route() {
    const routing::StreamHeader& h = sniffer_->header();
    content_ns_ = h.content_ns;
    const auto& listener = cfg_->listeners[listener_];
    if (std::find(listener.namespaces.begin(), listener.namespaces.end(), h.content_ns) ==
        listener.namespaces.end()) {
        refuse(StreamCondition::InvalidNamespace, "",
               "content namespace '" + h.content_ns + "' is not served on this listener");
        return;
    }
    if (!route_domain(h.to, h.has_to, true)) return;
    if (listener.tls == config::TlsMode::Terminate && !tls_) {
        offer_starttls();  // the header before TLS: routing only checked that the domain exists
        return;
    }
    sniffer_.reset();
    // Bytes after the header stay in replay_, and so does whatever the client sends until the
    // backend answers (bounded: see on_client_bytes), so that it can be replayed to the next
    // candidate. The client is still read meanwhile, so a client that goes away is noticed at
    // once rather than at the next timeout.
    connect_next();
}

// Normalises the requested domain (stream 'to' or SNI) and looks up its route. On failure the
// session is refused (a stream error when XML can be spoken, else closed) and false returned.
bool Session::route_domain(std::string_view raw, bool has_to, bool xml_errors) {
    auto fail = [&](StreamCondition c, std::string_view domain, const std::string& why) {
        if (xml_errors) {
            refuse(c, domain, why);
        } else {
            log::debug("closing: ", routing::to_string(c), ": ", why);
            condition_ = c;
            refused_ = true;
            worker_.stats().stream_error(c);
            finish(EndReason::Refused);
        }
        return false;
    };
    if (!has_to) return fail(StreamCondition::HostUnknown, "", "no 'to' (or no SNI)");
    std::string why;
    auto domain = routing::normalize_domain(raw, &why);
    if (!domain) return fail(StreamCondition::HostUnknown, "", "invalid domain: " + why);
    domain_ = std::move(*domain);
    auto decision = cfg_->routes->lookup(cfg_->listeners[listener_].name, domain_);
    if (!decision) return fail(StreamCondition::HostUnknown, domain_, "no route for this domain");
    route_name_ = decision->route_name;
    candidates_ = std::move(decision->candidates);
    next_candidate_ = 0;
    return true;
}

// Picks the next candidate that is up, not draining and under its limits; takes an admission
// slot or joins the backend's queue. Down and draining backends are skipped, which is how a hash
// pool moves only a down backend's domains (and moves them back when it recovers).
void Session::connect_next() {
    discard_backend();
    while (next_candidate_ < candidates_.size()) {
        backend_index_ = candidates_[next_candidate_++];
        const auto& b = cfg_->backends[backend_index_];
        backend_state_ = cfg_->states[backend_index_].get();
        backend_cell_ = worker_.stats().backend(b.name);
        if (b.drain || !backend_state_->up()) continue;
        if (b.max_sessions > 0 && backend_state_->sessions() >= b.max_sessions) {
            limited_ = true;
            continue;
        }
        mark_ns_ = uv_hrtime();
        if (backend_state_->try_acquire(b, uv_now(worker_.loop()))) {
            holding_slot_ = true;
            connect_now();
            return;
        }
        if (!worker_.enqueue(backend_state_, this, b.max_queue)) {
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
    backend_cell_->queued.add(-1);
    backend_cell_->queue_wait_seconds.observe(
        seconds_since(mark_ns_));
    holding_slot_ = true;
    connect_now();
}

void Session::refuse_admission(metrics::Admission why) {
    backend_cell_->admission_refusals[static_cast<std::size_t>(why)].add();
    const auto& listener = cfg_->listeners[listener_];
    std::string text = why == metrics::Admission::QueueTimeout ? "backend busy: waited too long"
                       : why == metrics::Admission::QueueFull  ? "backend busy: queue full"
                                                               : "backend full";
    if (!listener.see_other_host.empty())
        refuse(StreamCondition::SeeOtherHost, domain_, text);
    else
        refuse(StreamCondition::PolicyViolation, domain_, text);
}

void Session::connect_now() {
    set_state(State::Connecting);
    mark_ns_ = uv_hrtime();
    backend_ = new uv_tcp_t{};
    uv_tcp_init(worker_.loop(), backend_);
    backend_->data = this;
    ++open_handles_;
    auto* req = new uv_connect_t{};
    req->data = this;
    const auto& b = cfg_->backends[backend_index_];
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
    start_timer(cfg_->proxy.connect_timeout);
}

void Session::on_connect_done(uv_connect_t* req, int status) {
    auto* self = static_cast<Session*>(req->data);
    uv_stream_t* handle = req->handle;
    delete req;
    // A discarded attempt reports ECANCELED; its session may already be finishing.
    if (status == UV_ECANCELED || handle != reinterpret_cast<uv_stream_t*>(self->backend_)) return;
    self->on_connected(status);
}

void Session::on_connected(int status) {
    const auto& b = cfg_->backends[backend_index_];
    if (status != 0) {
        log::warn("backend ", b.name, " (", b.address_text, "): connect: ", uv_strerror(status));
        backend_failed("connect refused", true);
        return;
    }
    backend_cell_->connect_seconds.observe(seconds_since(mark_ns_));
    uv_tcp_nodelay(backend_, 1);
    set_state(State::AwaitingBackend);
    start_timer(cfg_->proxy.backend_timeout);
    if (!write_proxy_header()) return;
    send(kBackend, replay_.data(), replay_.size());
}

// The backend answered the replayed header: from now on the session is a plain relay.
void Session::on_backend_answered() {
    uv_timer_stop(&timer_);
    release_slot();
    mark_ns_ = 0;  // from now on: when a paused peer was first seen half-closed (probe_paused)
    set_state(State::Relaying);
    count(kBackend, replay_.size());
    std::string().swap(replay_);
    std::vector<std::size_t>().swap(candidates_);
    backend_state_->session_started();
    counted_live_ = true;
    session_cell_ = worker_.stats().session(cfg_->listeners[listener_].name, route_name_,
                                            cfg_->backends[backend_index_].name);
    session_cell_->active.add(1);
    session_cell_->total.add();
}

// One attempt failed: count it, mark the backend down at once when health checks watch it
// (passive check), and try the next candidate.
void Session::backend_failed(const char* what, bool passive_down) {
    const auto& b = cfg_->backends[backend_index_];
    backend_cell_->connect_failures.add();
    if (passive_down && b.check != config::CheckKind::None && backend_state_->mark_down_now())
        log::warn("backend ", b.name, " marked down: ", what, " (passive check)");
    connect_next();
}

void Session::on_timeout() {
    switch (state_) {
        case State::Sniffing:
        case State::Negotiating:
        case State::Handshaking:
            refuse(StreamCondition::ConnectionTimeout, domain_, "no complete stream header in time");
            return;
        case State::Queued:
            worker_.dequeue(this);
            backend_cell_->queued.add(-1);
            refuse_admission(metrics::Admission::QueueTimeout);
            return;
        case State::Connecting:
        case State::AwaitingBackend:
            log::warn("backend ", cfg_->backends[backend_index_].name, ": ",
                      state_ == State::Connecting ? "connect timed out" : "no answer to the header in time");
            backend_failed(state_ == State::Connecting ? "connect timed out" : "no answer in time", true);
            return;
        case State::Closing:
        case State::Refusing:
            if (state_ == State::Closing) reason_ = EndReason::TimedOut;
            finish(reason_);
            return;
        case State::Relaying:
            probe_paused();
            return;
        case State::Closed:
            return;
    }
}

void Session::refuse(StreamCondition c, std::string_view domain, std::string_view detail) {
    condition_ = c;
    refused_ = true;
    if (reason_ != EndReason::BackendConnectFailed) reason_ = EndReason::Refused;
    worker_.stats().stream_error(c);
    log::debug("refusing ", domain.empty() ? "-" : domain, ": ", routing::to_string(c), ": ", detail);
    const auto& listener = cfg_->listeners[listener_];
    bool xml = tls_ ? tls_->state() == tls::TlsState::Open : !listener.direct_tls;
    if (!xml) {  // mid-handshake, or Direct TLS passed through: no way to speak XML
        finish(reason_);
        return;
    }
    // Build the bytes first: domain and detail may point into state released below.
    routing::StreamErrorSpec spec;
    spec.condition = c;
    spec.from_domain = domain;
    if (!content_ns_.empty()) spec.content_ns = content_ns_;
    spec.text = detail;
    if (c == StreamCondition::SeeOtherHost) spec.other_host = listener.see_other_host;
    spec.header = !header_sent_;
    std::string bytes = routing::stream_error_bytes(spec);
    discard_backend();
    sniffer_.reset();
    starttls_.reset();
    std::string().swap(replay_);
    set_state(State::Refusing);
    to_client(bytes.data(), bytes.size());
    if (tls_ && state_ == State::Refusing) close_tls();
    if (state_ != State::Refusing) return;  // the write failed and finished the session
    // Keep reading (and dropping) what the client sends until it closes, so that closing
    // does not reset the connection before the client has read the error.
    set_reading(kClient, true);
    shutdown_side(kClient);
    if (state_ == State::Refusing) start_timer(cfg_->proxy.close_linger);
}

void Session::release_slot() {
    if (!holding_slot_) return;
    holding_slot_ = false;
    backend_state_->release();
    worker_.pump(backend_state_);
}

void Session::discard_backend() {
    release_slot();
    if (!backend_) return;
    auto* h = reinterpret_cast<uv_handle_t*>(backend_);
    backend_ = nullptr;
    pending_[kBackend] = 0;
    reading_[kBackend] = false;
    finished_[kBackend] = false;
    paused_[kClient] = false;
    uv_close(h, on_close);
}

void Session::finish(EndReason r) {
    if (state_ == State::Closed) return;
    if (state_ == State::Queued) {
        worker_.dequeue(this);
        backend_cell_->queued.add(-1);
    }
    reason_ = r;
    log_end();
    worker_.stats().ended(r);
    listener_cell_->connections.add(-1);
    if (session_cell_) session_cell_->active.add(-1);
    if (counted_live_) backend_state_->session_ended();
    set_state(State::Closed);
    discard_backend();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&client_), on_close);
    worker_.session_ended(this);
}

void Session::log_end() {
    app::SessionLogEntry e;
    e.client = reinterpret_cast<const sockaddr*>(&peer_);
    e.listener = cfg_->listeners[listener_].name;
    e.domain = domain_;
    e.route = route_name_;
    if (backend_state_) e.backend = cfg_->backends[backend_index_].name;
    e.duration_ms = (uv_hrtime() - start_ns_) / 1000000;
    e.bytes_to_backend = bytes_[kBackend];
    e.bytes_to_client = bytes_[kClient];
    e.reason = to_string(reason_);
    if (refused_) e.condition = routing::to_string(condition_);
    e.error = refused_ || reason_ == EndReason::ClientError || reason_ == EndReason::BackendError ||
              reason_ == EndReason::TimedOut || reason_ == EndReason::NotXmpp ||
              reason_ == EndReason::TlsFailed;
    worker_.session_log(e);
}

void Session::on_close(uv_handle_t* h) {
    static_cast<Session*>(h->data)->on_handle_closed(h);
}

void Session::on_handle_closed(uv_handle_t* h) {
    if (h != reinterpret_cast<uv_handle_t*>(&client_) && h != reinterpret_cast<uv_handle_t*>(&timer_))
        delete reinterpret_cast<uv_tcp_t*>(h);
    if (--open_handles_ == 0 && state_ == State::Closed) delete this;
}

void Session::on_timer(uv_timer_t* t) { static_cast<Session*>(t->data)->on_timeout(); }

}  // namespace xs::session
