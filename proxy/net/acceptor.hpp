// Accepts connections on one listening socket (the worker's SO_REUSEPORT socket) with
// accept4() driven by a uv_poll_t, so that accepting can be paused: when the process runs out
// of file descriptors (EMFILE/ENFILE) or the connection cap is reached, new connections wait
// in the kernel's backlog instead of being accepted and dropped, and the loop does not spin.
#pragma once
#include <sys/socket.h>
#include <uv.h>

#include <functional>

namespace xs::net {

class Acceptor {
public:
    enum class Stop { Exhausted, Capped };
    struct Callbacks {
        // Called with a non-blocking, close-on-exec client fd; may return false to stop the
        // current accept batch (e.g. the connection cap was reached).
        std::function<bool(int fd, const sockaddr_storage& peer)> accepted;
        std::function<void(int err)> exhausted;  // EMFILE / ENFILE: accepting is now paused
    };

    Acceptor(uv_loop_t* loop, int fd, Callbacks cb);
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    void resume();  // start or resume polling
    void pause();
    bool paused() const { return paused_; }
    // Stops polling and closes the socket; the object may be destroyed after `done` runs.
    void close(std::function<void()> done = nullptr);

private:
    static void on_readable(uv_poll_t* p, int status, int events);
    void accept_batch();

    uv_poll_t poll_{};
    int fd_;
    Callbacks cb_;
    bool paused_ = true;
    bool closed_ = false;
    std::function<void()> on_closed_;
};

}  // namespace xs::net
