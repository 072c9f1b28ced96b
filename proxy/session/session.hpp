// One client connection, from accept to close: a front door reads the client's first bytes and
// decides (route, refuse, or start TLS first), then admission, connect to a backend (trying the
// route's candidates in turn), replay the client's bytes, then relay both ways with
// backpressure. One state enum; set_state() is the only place that changes it and asserts the
// transition table (transitions.cpp). finish() is the only exit path and records why the
// session ended. Errors found while writing (send, shutdown) are recorded and acted on when the
// current libuv callback returns (CallbackScope), so no caller sees the session end under it.
#pragma once
#include <netinet/in.h>
#include <uv.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "metrics/worker_stats.hpp"
#include "routing/stream_condition.hpp"
#include "session/end_reason.hpp"
#include "session/front_door.hpp"
#include "session/snapshot.hpp"
#include "upstream/admission_queue.hpp"
#include "upstream/idle_pool.hpp"

namespace xs::tls {
class TlsStream;
}
namespace xs::upstream {
class BackendState;
}

namespace xs::session {

class SessionHost;

enum class State {
    Opening,          // the front door reads the client's first bytes (header_timeout running);
                      // with TLS terminated here this includes the handshake
    Queued,           // waiting for admission to a backend (queue_timeout running)
    Connecting,       // TCP connect to a backend candidate (connect_timeout running)
    AwaitingBackend,  // client bytes replayed; waiting for the backend's first bytes (backend_timeout)
    Relaying,         // bytes flow both ways
    Closing,          // one side finished: flushing to the other (close_linger running)
    Refusing,         // refusal written; flushing it, then closing (close_linger running)
    Closed,           // handles closing; freed when the last close callback has run
};
inline constexpr std::size_t kStateCount = 8;
std::string_view to_string(State s);
// The transition table (transitions.cpp): whether set_state may move `from` -> `to`.
bool allowed(State from, State to);
// The table as the Markdown that ARCHITECTURE.md carries (a test keeps them equal).
std::string render_transitions();

enum Side : int { kClient = 0, kBackend = 1 };

class Session final : public upstream::Waiter, private upstream::ConnReader {
public:
    Session(SessionHost& host, std::shared_ptr<const Snapshot> snap, std::size_t listener);
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Takes the accepted client fd and opens the front door (or refuses at once when the
    // source address is over its rate). The session owns itself from here on and frees itself
    // when its last handle is closed; the caller must not touch it after this returns.
    void start(int fd, const sockaddr_storage& peer);

    // Drain deadline: cut the session now.
    void cut();
    // Draining: an HTTP keep-alive connection waiting for its next request ends now.
    void end_if_idle();
    // upstream::Waiter: admission granted by the host's queue (a slot is held already).
    void admitted() override;
    const config::BackendConfig& wanted() const override { return cfg().backends[backend_index_]; }

    State state() const { return state_; }

    // Intrusive list of the host's sessions.
    Session* prev = nullptr;
    Session* next = nullptr;

private:
    struct WriteReq;
    // Entered by every libuv callback and host call; on leaving the outermost one, recorded
    // write errors and a requested end are acted on (settle()).
    class CallbackScope {
    public:
        explicit CallbackScope(Session* s) : s_(s) { ++s_->depth_; }
        ~CallbackScope() {
            if (--s_->depth_ == 0) s_->settle();
        }
        CallbackScope(const CallbackScope&) = delete;
        CallbackScope& operator=(const CallbackScope&) = delete;

    private:
        Session* s_;
    };

    const config::Config& cfg() const { return *snap_->cfg; }
    const config::ListenerConfig& listener() const { return cfg().listeners[listener_]; }

    // lifecycle (session.cpp)
    void set_state(State s);
    void on_verdict(Verdict v);
    void route(RouteKey key, std::string replay);
    void on_timeout();
    void refuse(routing::StreamCondition c, std::string_view domain, std::string_view detail);
    void finish(EndReason r);
    void end_later(EndReason r);
    void settle();
    void log_end();
    std::string peer_ip() const;
    void on_handle_closed(uv_handle_t* h);

    // backends (connect.cpp)
    void connect_next();
    void connect_now();
    void on_connected(int status);
    void begin_relay();  // the backend answered
    void after_answer(); // a raw relay began: read the client on (or pass on its earlier FIN)
    void backend_failed(const char* what, bool passive_down);
    void refuse_admission(metrics::Admission why);
    void discard_backend();
    void detach_backend();  // forget the backend connection (closed or parked by the caller)
    void park_backend();    // to the idle pool, for the next request to that backend
    void release_slot();
    bool write_proxy_header();

    // TLS with the client, when the door asked for it (client_tls.cpp)
    void start_tls(std::string_view sni_fallback);
    void on_tls_bytes(const char* data, std::size_t len);
    void to_client(const char* data, std::size_t len);
    void close_tls();
    void tls_failed();

    // byte pump (relay.cpp)
    void on_read(Side from, ssize_t nread, const char* data);
    void on_client_bytes(const char* data, std::size_t len);
    void on_backend_bytes(const char* data, std::size_t len);
    // HTTP exchanges (the door frames requests and responses): http_exchange.cpp
    void on_response(const char* data, std::size_t len);
    void exchange_done(bool stray);
    void end_exchange();
    void count(Side to, std::size_t len);
    void send(Side to, const char* data, std::size_t len);
    void on_written(Side to, std::size_t len, int status);
    void side_finished(Side side, int status);
    void shutdown_side(Side side);
    void probe_paused();
    static constexpr uint64_t kProbeMs = 1000;  // liveness probe of a side paused by backpressure
    void set_reading(Side side, bool on);
    uv_stream_t* stream(Side s);
    void start_timer(config::Millis ms);
    static double seconds_since(uint64_t ns) { return static_cast<double>(uv_hrtime() - ns) / 1e9; }

    static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
    static void on_client_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
    // The backend connection reads through ConnReader (its data is this as a ConnReader*), so
    // that it keeps its read interest when it goes to the idle pool and comes back.
    void conn_buffer(uv_buf_t* buf) override;
    void conn_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) override;
    static void on_backend_close(uv_handle_t* h);
    static void on_write_done(uv_write_t* req, int status);
    static void on_shutdown_done(uv_shutdown_t* req, int status);
    static void on_connect_done(uv_connect_t* req, int status);
    static void on_timer(uv_timer_t* t);
    static void on_close(uv_handle_t* h);

    SessionHost& host_;
    std::shared_ptr<const Snapshot> snap_;  // the configuration this session started with
    std::size_t listener_;
    State state_ = State::Opening;
    EndReason reason_ = EndReason::ClientClosed;
    routing::StreamCondition condition_ = routing::StreamCondition::HostUnknown;
    bool refused_ = false;
    bool end_pending_ = false;     // end_later() was called: finish(reason_) in settle()
    int depth_ = 0;                // CallbackScope nesting
    std::array<int, 2> write_error_{0, 0};  // first failed write or shutdown per side, for settle()

    uv_tcp_t client_{};
    uv_timer_t timer_{};
    uv_tcp_t* backend_ = nullptr;  // heap: replaced on failover
    int open_handles_ = 0;

    std::unique_ptr<FrontDoor> door_;        // until the backend answers
    std::unique_ptr<tls::TlsStream> tls_;    // when the door started TLS with the client
    std::string replay_;              // the client's bytes so far; freed once relaying
    std::string domain_;              // normalised requested domain
    std::vector<std::size_t> candidates_;  // backend indices, best first
    std::size_t next_candidate_ = 0;
    std::size_t backend_index_ = 0;   // into cfg().backends, valid once a candidate is chosen
    std::string_view route_name_;
    upstream::BackendState* backend_state_ = nullptr;
    bool holding_slot_ = false;       // an admission slot of backend_state_
    bool counted_live_ = false;       // counted in backend_state_->sessions()
    bool limited_ = false;            // some candidate was skipped for its limits
    bool reused_ = false;             // backend_ came from the idle pool (not yet answered)
    bool fresh_ = false;              // the next connect must not take a pooled connection
    unsigned exchanges_ = 0;          // HTTP exchanges completed on this connection

    sockaddr_in6 peer_{};             // the client's address (IPv4 fits too), for the log
    // Stopwatches in uv_hrtime nanoseconds (the loop's cached ms clock is too coarse for the
    // latency histograms: a loopback connect takes tens of microseconds).
    uint64_t start_ns_ = 0;           // at accept
    uint64_t mark_ns_ = 0;            // when the current wait began; Relaying: when a paused
                                      // peer was first seen half-closed (0: not seen)
    std::array<uint64_t, 2> bytes_{0, 0};  // relayed towards each side
    metrics::WorkerStats::ListenerCell* listener_cell_ = nullptr;
    metrics::WorkerStats::BackendCell* backend_cell_ = nullptr;
    metrics::WorkerStats::SessionCell* session_cell_ = nullptr;
    metrics::LocalGauge* held_ = nullptr;  // a gauge the door counted this session in

    std::array<std::size_t, 2> pending_{0, 0};  // bytes queued towards each side
    std::array<bool, 2> reading_{false, false};
    std::array<bool, 2> finished_{false, false};  // read side saw EOF or error
    std::array<bool, 2> paused_{false, false};    // reading stopped by backpressure
};

}  // namespace xs::session
