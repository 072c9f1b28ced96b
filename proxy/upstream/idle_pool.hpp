// Idle backend connections of one worker, kept after an HTTP exchange that left them reusable
// (a keep-alive response whose body was framed), for the next request to the same backend. The
// pool owns a parked connection: it reads it, and closes it when the backend sends anything or
// closes (an idle HTTP connection has nothing to say), when it has been idle for `idle_ms`, or
// when the backend's bucket is full. Buckets are keyed by backend name and address, so a reload
// that moves a backend never hands out a connection to the old address. Loop thread only.
//
// A backend connection reads with the same two callbacks for its whole life (ConnReader), which
// dispatch through the handle's data to whoever owns it now: the session it serves, or the pool
// while it is parked. Parking and taking it changes that pointer only; stopping and restarting
// the read would re-register the socket with epoll each time (libuv's uv_read_start after a
// uv_read_stop is an EPOLL_CTL_ADD that fails with EEXIST and is retried as a MOD).
#pragma once
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>

namespace xs::upstream {

// The owner of a backend connection's reads; the handle's data points to it (as ConnReader*).
class ConnReader {
public:
    virtual void conn_buffer(uv_buf_t* buf) = 0;
    virtual void conn_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) = 0;
    // Reads `h` with the dispatching callbacks. 0 when it reads (now, or already), else the
    // libuv error. A backend connection must never read with other callbacks.
    static int read_start(uv_stream_t* h);

protected:
    ~ConnReader() = default;

private:
    static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf);
    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
};

class IdlePool {
public:
    static constexpr std::size_t kMaxPerBackend = 32;
    static constexpr uint64_t kSweepMs = 1000;

    explicit IdlePool(uint64_t idle_ms = 15000) : idle_ms_(idle_ms) {}
    // Returns 0, or the libuv error of the timer's initialisation.
    int init(uv_loop_t* loop);
    // Closes every parked connection and the sweep timer (drain, exit).
    void close();

    // Parks `h` (connected, a heap uv_tcp_t, reading through ConnReader::read_start or not
    // reading; its handle data is the pool's from now on). A closed pool, or a full bucket,
    // closes it instead.
    void park(const std::string& key, uv_tcp_t* h);
    // The most recently parked connection for `key`, or nullptr. It is still reading (through
    // ConnReader's callbacks) and its data is null: the caller points it at its own ConnReader
    // before returning to the loop.
    uv_tcp_t* take(const std::string& key);
    std::size_t idle() const { return count_; }

    static std::string key_of(const std::string& name, const std::string& address);

private:
    struct Tag;
    struct Parked {
        uv_tcp_t* h;
        uint64_t since;
    };
    static void on_timer(uv_timer_t* t);
    static void on_closed(uv_handle_t* h);
    static void close_parked(uv_tcp_t* h);
    void drop(uv_tcp_t* h);  // remove from its bucket and close
    void sweep();

    uv_loop_t* loop_ = nullptr;
    uv_timer_t timer_{};
    bool open_ = false;
    uint64_t idle_ms_;
    std::size_t count_ = 0;
    std::map<std::string, std::deque<Parked>> buckets_;
    char sink_[512];  // what a parked connection reads (then closed)
};

}  // namespace xs::upstream
