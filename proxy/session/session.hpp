// One client connection, from accept to close: sniff the stream header, route it, connect to a
// backend (trying the route's candidates in turn), replay the client's exact bytes, then relay
// both ways with backpressure. One state enum; set_state() is the only place that changes it;
// finish() is the only exit path and records why the session ended.
#pragma once
#include <uv.h>

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "routing/stream_condition.hpp"
#include "routing/stream_header_sniffer.hpp"

namespace xs::app {
class Worker;
}

namespace xs::session {

enum class State {
    Sniffing,         // reading the client's stream header (header_timeout running)
    Connecting,       // TCP connect to a backend candidate (connect_timeout running)
    AwaitingBackend,  // header replayed; waiting for the backend's first bytes (backend_timeout)
    Relaying,         // bytes flow both ways
    Closing,          // one side finished: flushing to the other (close_linger running)
    Refusing,         // stream error written; flushing it, then closing (close_linger running)
    Closed,           // handles closing; freed when the last close callback has run
};
std::string_view to_string(State s);

enum class EndReason {
    ClientClosed,
    BackendClosed,
    ClientError,
    BackendError,
    Refused,               // a stream error was sent (see condition)
    BackendConnectFailed,  // every candidate failed: remote-connection-failed was sent
    NotXmpp,               // e.g. a TLS ClientHello on a plaintext listener: closed without XML
    TimedOut,              // a side did not finish within close_linger
    Drained,               // cut at the end of drain_timeout
};
std::string_view to_string(EndReason r);

enum Side : int { kClient = 0, kBackend = 1 };

class Session {
public:
    Session(app::Worker& worker, std::shared_ptr<const config::Config> cfg, std::size_t listener);
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Accepts the pending connection on `server` and starts sniffing. On failure the session
    // finishes (and frees itself); the caller must not touch it after this returns.
    void start(uv_stream_t* server);

    // Drain deadline: cut the session now.
    void cut() { finish(EndReason::Drained); }

    State state() const { return state_; }

    // Intrusive list of the worker's sessions.
    Session* prev = nullptr;
    Session* next = nullptr;

private:
    struct WriteReq;

    // lifecycle (session.cpp)
    void set_state(State s);
    void on_header_bytes(const char* data, std::size_t len);
    void route();
    void connect_next();
    void on_connected(int status);
    void on_timeout();
    void refuse(routing::StreamCondition c, std::string_view domain, std::string_view detail);
    void discard_backend();
    void finish(EndReason r);
    void on_handle_closed(uv_handle_t* h);

    // byte pump (relay.cpp)
    void on_read(Side from, ssize_t nread, const char* data);
    void send(Side to, const char* data, std::size_t len);
    void on_written(Side to, std::size_t len, int status);
    void side_finished(Side side, int status);
    void shutdown_side(Side side);
    void set_reading(Side side, bool on);
    uv_stream_t* stream(Side s);
    void start_timer(config::Millis ms);

    static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
    static void on_client_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
    static void on_backend_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
    static void on_write_done(uv_write_t* req, int status);
    static void on_shutdown_done(uv_shutdown_t* req, int status);
    static void on_connect_done(uv_connect_t* req, int status);
    static void on_timer(uv_timer_t* t);
    static void on_close(uv_handle_t* h);

    app::Worker& worker_;
    std::shared_ptr<const config::Config> cfg_;
    std::size_t listener_;
    State state_ = State::Sniffing;
    EndReason reason_ = EndReason::ClientClosed;
    routing::StreamCondition condition_ = routing::StreamCondition::HostUnknown;

    uv_tcp_t client_{};
    uv_timer_t timer_{};
    uv_tcp_t* backend_ = nullptr;  // heap: replaced on failover
    int open_handles_ = 0;

    std::unique_ptr<routing::StreamHeaderSniffer> sniffer_;  // only while sniffing
    std::string replay_;              // the client's bytes so far; freed once relaying
    std::string domain_;              // normalised 'to'
    std::string content_ns_;
    std::vector<std::size_t> candidates_;  // backend indices left to try
    std::size_t next_candidate_ = 0;
    std::size_t backend_index_ = 0;   // into cfg_->backends, valid once connecting
    std::string_view route_name_;

    std::array<std::size_t, 2> pending_{0, 0};  // bytes queued towards each side
    std::array<bool, 2> reading_{false, false};
    std::array<bool, 2> finished_{false, false};  // read side saw EOF or error
    std::array<bool, 2> paused_{false, false};    // reading stopped by backpressure
};

}  // namespace xs::session
