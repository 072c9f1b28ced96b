#include "net/acceptor.hpp"

#include <unistd.h>

#include <cerrno>

#include "util/log.hpp"

namespace xs::net {

namespace {
constexpr int kBatch = 128;  // accepts per readiness event, so one listener cannot starve the loop
}

Acceptor::Acceptor(uv_loop_t* loop, int fd, Callbacks cb) : fd_(fd), cb_(std::move(cb)) {
    uv_poll_init_socket(loop, &poll_, fd);
    poll_.data = this;
}

void Acceptor::resume() {
    if (closed_ || !paused_) return;
    paused_ = false;
    uv_poll_start(&poll_, UV_READABLE, on_readable);
}

void Acceptor::pause() {
    if (closed_ || paused_) return;
    paused_ = true;
    uv_poll_stop(&poll_);
}

void Acceptor::close(std::function<void()> done) {
    if (closed_) return;
    closed_ = true;
    paused_ = true;
    on_closed_ = std::move(done);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t* h) {
        auto* self = static_cast<Acceptor*>(h->data);
        ::close(self->fd_);
        if (self->on_closed_) self->on_closed_();
    });
}

void Acceptor::on_readable(uv_poll_t* p, int status, int) {
    auto* self = static_cast<Acceptor*>(p->data);
    if (status < 0) {
        log::warn("listening socket: ", uv_strerror(status));
        return;
    }
    self->accept_batch();
}

void Acceptor::accept_batch() {
    for (int i = 0; i < kBatch && !paused_; ++i) {
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) return;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                pause();
                if (cb_.exhausted) cb_.exhausted(err);
                return;
            }
            log::warn("accept: ", uv_strerror(-err));
            return;
        }
        if (!cb_.accepted(fd, peer)) return;
    }
}

}  // namespace xs::net
