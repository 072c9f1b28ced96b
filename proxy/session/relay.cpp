// The byte pump: reads land in the worker's scratch buffer and are written on at once with
// uv_try_write; only what the kernel does not take is copied into a heap write request. Past
// high_water bytes queued towards one side, reading from the other side stops until the queue
// drains below low_water, so memory per session stays bounded whatever the peers do.
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "session/host.hpp"
#include "session/session.hpp"
#include "util/log.hpp"

namespace xs::session {

namespace {
Side other(Side s) { return s == kClient ? kBackend : kClient; }
}  // namespace

struct Session::WriteReq {
    uv_write_t req;
    Session* session;
    uv_stream_t* handle;
    Side to;
    std::size_t len;
    char* data() { return reinterpret_cast<char*>(this + 1); }
};

uv_stream_t* Session::stream(Side s) {
    return s == kClient ? reinterpret_cast<uv_stream_t*>(&client_)
                        : reinterpret_cast<uv_stream_t*>(backend_);
}

void Session::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* self = static_cast<Session*>(h->data);
    *buf = uv_buf_init(self->host_.scratch(), static_cast<unsigned>(self->host_.scratch_size()));
}

void Session::on_client_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<Session*>(s->data);
    CallbackScope scope(self);
    self->on_read(kClient, nread, buf->base);
}

void Session::conn_buffer(uv_buf_t* buf) {
    *buf = uv_buf_init(host_.scratch(), static_cast<unsigned>(host_.scratch_size()));
}

void Session::conn_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    if (s != stream(kBackend)) return;  // a discarded attempt
    CallbackScope scope(this);
    on_read(kBackend, nread, buf->base);
}

// Each uv_read_stop/uv_read_start pair costs epoll_ctl calls (libuv's EPOLL_CTL_ADD finds the
// socket still registered, fails and is retried as MOD), so reading stops only where it must
// (backpressure, a finished side, a pipelined request, a full replay buffer): an HTTP exchange's
// end leaves both sides reading, and the idle pool takes a backend connection over as it is.
void Session::set_reading(Side side, bool on) {
    uv_stream_t* h = stream(side);
    if (!h || reading_[side] == on || state_ == State::Closed) return;
    if (!on) uv_read_stop(h);
    else if (side == kClient) uv_read_start(h, on_alloc, on_client_read);
    else upstream::ConnReader::read_start(h);
    reading_[side] = on;
}

void Session::on_read(Side from, ssize_t nread, const char* data) {
    if (nread == 0 || state_ == State::Closed) return;
    if (nread < 0) {
        side_finished(from, static_cast<int>(nread));
        return;
    }
    auto len = static_cast<std::size_t>(nread);
    if (from == kBackend) on_backend_bytes(data, len);
    else if (tls_) on_tls_bytes(data, len);  // decrypts, then on_client_bytes()
    else on_client_bytes(data, len);
}

// Plaintext from the client (decrypted when the proxy terminates TLS).
void Session::on_client_bytes(const char* data, std::size_t len) {
    if (state_ == State::Opening) {
        // Between HTTP exchanges keepalive_timeout runs; once a request begins, header_timeout.
        bool was_idle = exchanges_ > 0 && door_->idle();
        Verdict v = door_->feed(std::string_view(data, len));
        if (was_idle && v.step == Step::NeedMore) start_timer(cfg().proxy.header_timeout);
        on_verdict(std::move(v));
        return;
    }
    if (door_ && state_ != State::Refusing) {
        // An HTTP exchange: only the current request's body goes on; a pipelined request
        // waits, unread, until this exchange ends.
        std::size_t n = door_->request(std::string_view(data, len));
        if (n < len) set_reading(kClient, false);
        if (n == 0) return;
        len = n;
    }
    switch (state_) {
        case State::AwaitingBackend:
            send(kBackend, data, len);  // connected: pass it on, and keep it for a failover
            [[fallthrough]];
        case State::Queued:
        case State::Connecting:
            replay_.append(data, len);
            // Bounded: past this the client waits (and a vanished client is noticed by the
            // state's timeout instead).
            if (replay_.size() > cfg().proxy.max_header_bytes + host_.scratch_size())
                set_reading(kClient, false);
            return;
        case State::Relaying:
        case State::Closing:
            if (!backend_) return;  // an HTTP exchange ended and the connection is closing
            count(kBackend, len);
            send(kBackend, data, len);
            return;
        case State::Refusing:  // lingering close: drop what the client still sends
        default:
            return;
    }
}

// From the backend's first answer on. The door sees the bytes while it frames an HTTP exchange
// (and the first answer of every session); then it is freed and bytes pass as they come.
void Session::on_backend_bytes(const char* data, std::size_t len) {
    if (state_ == State::AwaitingBackend) begin_relay();
    else if (state_ != State::Relaying && state_ != State::Closing) return;
    if (door_ && door_->exchanges()) {
        on_response(data, len);
        return;
    }
    count(kClient, len);
    to_client(data, len);
    if (door_) {  // the backend's first answer: a raw relay from here on
        door_.reset();  // no refusal after this point
        after_answer();
    }
}

// A raw relay began (the door is gone): read the client on, or pass on a FIN it sent while the
// backend had not answered yet.
void Session::after_answer() {
    if (state_ != State::Relaying) return;
    if (finished_[kClient]) {
        set_state(State::Closing);
        reason_ = EndReason::ClientClosed;
        start_timer(cfg().proxy.close_linger);
        shutdown_side(kBackend);
        return;
    }
    set_reading(kClient, !paused_[kClient]);
}

void Session::count(Side to, std::size_t len) {
    bytes_[to] += len;
    backend_cell_->bytes[to == kBackend ? metrics::Direction::ToBackend : metrics::Direction::ToClient].add(len);
}

// A failed write is recorded, not acted on: the side is finished when the current callback
// returns (settle()), so callers never see the session change state under them. Later writes
// to that side are dropped.
void Session::send(Side to, const char* data, std::size_t len) {
    uv_stream_t* h = stream(to);
    if (!h || len == 0 || write_error_[to] != 0 || state_ == State::Closed) return;
    if (pending_[to] == 0) {
        uv_buf_t b = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
        int n = uv_try_write(h, &b, 1);
        if (n == static_cast<int>(len)) return;
        if (n < 0 && n != UV_EAGAIN) {
            write_error_[to] = n;
            return;
        }
        if (n > 0) {
            data += n;
            len -= static_cast<std::size_t>(n);
        }
    }
    void* mem = std::malloc(sizeof(WriteReq) + len);
    if (!mem) log::die("session: out of memory for a write");
    auto* w = new (mem) WriteReq{};
    w->session = this;
    w->handle = h;
    w->to = to;
    w->len = len;
    std::memcpy(w->data(), data, len);
    uv_buf_t b = uv_buf_init(w->data(), static_cast<unsigned>(len));
    if (int rc = uv_write(&w->req, h, &b, 1, on_write_done); rc != 0) {
        std::free(mem);
        write_error_[to] = rc;
        return;
    }
    pending_[to] += len;
    Side from = other(to);
    if (pending_[to] > cfg().proxy.high_water && !paused_[from]) {
        paused_[from] = true;
        set_reading(from, false);
        // Not reading `from` any more, so its FIN or RST would go unnoticed: probe it.
        if (state_ == State::Relaying && !uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_)))
            uv_timer_start(&timer_, on_timer, kProbeMs, kProbeMs);
    }
}

void Session::on_write_done(uv_write_t* req, int status) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    Session* self = w->session;
    uv_stream_t* h = w->handle;
    Side to = w->to;
    std::size_t len = w->len;
    w->~WriteReq();
    std::free(w);
    if (status == UV_ECANCELED || h != self->stream(to)) return;
    CallbackScope scope(self);
    self->on_written(to, len, status);
}

void Session::on_written(Side to, std::size_t len, int status) {
    if (state_ == State::Closed) return;
    if (status < 0) {
        side_finished(to, status);
        return;
    }
    pending_[to] -= len;
    Side from = other(to);
    if (paused_[from] && pending_[to] <= cfg().proxy.low_water) {
        paused_[from] = false;
        if (state_ == State::Relaying && !finished_[from]) set_reading(from, true);
    }
}

void Session::side_finished(Side side, int status) {
    if (state_ == State::Closed) return;
    bool eof = status == UV_EOF;
    finished_[side] = true;
    set_reading(side, false);
    switch (state_) {
        case State::Opening:
            finish(eof ? EndReason::ClientClosed : EndReason::ClientError);
            return;
        case State::Queued:
        case State::Connecting:
        case State::AwaitingBackend:
            if (side == kClient) {
                // A half-close (FIN) is passed on once relaying starts (the backend's answer
                // still reaches the client); a reset ends the session now. An HTTP client that
                // closes has given up on its request (a held BOSH poll): that ends it too.
                if (!eof) finish(EndReason::ClientError);
                else if (door_ && door_->exchanges()) finish(EndReason::ClientClosed);
                return;
            }
            log::warn("backend ", cfg().backends[backend_index_].name, " closed before answering: ",
                      uv_strerror(status));
            backend_failed("closed before answering", true);
            return;
        case State::Refusing:
            if (side == kClient) finish(reason_);
            return;
        case State::Relaying:
            set_state(State::Closing);
            start_timer(cfg().proxy.close_linger);
            if (side == kClient) {
                if (!eof) {
                    finish(EndReason::ClientError);
                    return;
                }
                // Half-close: pass the client's FIN on and keep relaying the backend's answer.
                reason_ = EndReason::ClientClosed;
                shutdown_side(kBackend);
                return;
            }
            reason_ = eof ? EndReason::BackendClosed : EndReason::BackendError;
            [[fallthrough]];
        case State::Closing:
            if (side == kBackend) {
                // Flush what the backend sent, then close the client too.
                discard_backend();
                set_reading(kClient, false);
                if (tls_) close_tls();
                shutdown_side(kClient);
                return;
            }
            finish(reason_);
            return;
        case State::Closed:
            return;
    }
}

// Relaying with a side paused by backpressure: ask the kernel whether that peer is still there.
// Reset: the side has failed. Half-closed (FIN) for longer than close_linger: give up, as when
// a side finishes. Nothing paused any more: the probe stops.
void Session::probe_paused() {
    bool any = false;
    uint64_t now = uv_hrtime();
    for (Side s : {kClient, kBackend}) {
        uv_os_fd_t fd;
        if (!paused_[s] || !stream(s) || uv_fileno(reinterpret_cast<uv_handle_t*>(stream(s)), &fd) != 0)
            continue;
        any = true;
        tcp_info ti{};
        socklen_t len = sizeof ti;
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) continue;
        if (ti.tcpi_state == TCP_CLOSE) {
            side_finished(s, UV_ECONNRESET);
            return;
        }
        if (ti.tcpi_state == TCP_CLOSE_WAIT) {
            if (mark_ns_ == 0) mark_ns_ = now;
            if (now - mark_ns_ >= static_cast<uint64_t>(cfg().proxy.close_linger.count()) * 1000000) {
                log::debug("session ", static_cast<const void*>(this), ": paused peer closed ",
                           (now - mark_ns_) / 1000000, " ms ago");
                finish(EndReason::TimedOut);
                return;
            }
        }
    }
    if (!any) uv_timer_stop(&timer_);
}

// Pass a FIN on once everything queued for `side` is written. With nothing queued (the usual
// case) shut down directly: uv_shutdown would register for writability just to learn that the
// write queue is empty, an epoll_ctl round trip per session. Finishing the client side ends a
// Closing session (on_shutdown_done's rule), when the current callback returns (end_later).
void Session::shutdown_side(Side side) {
    uv_stream_t* h = stream(side);
    if (!h || write_error_[side] != 0 || state_ == State::Closed) return;
    uv_os_fd_t fd;
    if (pending_[side] == 0 && uv_fileno(reinterpret_cast<uv_handle_t*>(h), &fd) == 0) {
        if (side == kClient && state_ == State::Closing) {  // close() sends the FIN at once
            end_later(reason_);
            return;
        }
        // A failed shutdown of the client ends the session, as in on_shutdown_done.
        if (::shutdown(fd, SHUT_WR) != 0 && side == kClient) end_later(reason_);
        return;
    }
    auto* req = new uv_shutdown_t{};
    req->data = this;
    if (uv_shutdown(req, h, on_shutdown_done) != 0) {
        delete req;
        if (side == kClient) end_later(reason_);
    }
}

void Session::on_shutdown_done(uv_shutdown_t* req, int status) {
    auto* self = static_cast<Session*>(req->data);
    uv_stream_t* h = req->handle;
    delete req;
    if (status == UV_ECANCELED || self->state_ == State::Closed) return;
    if (h != self->stream(kClient)) return;
    CallbackScope scope(self);
    // The client has everything we had for it. Closing: done. Refusing: linger for its EOF
    // unless the shutdown itself failed.
    if (self->state_ == State::Closing || status < 0) self->finish(self->reason_);
}

}  // namespace xs::session
