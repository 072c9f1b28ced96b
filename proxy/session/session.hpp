// One client connection, from accept to close: sniff the stream header, route it, pass
// admission, connect to a backend (trying the route's candidates in turn), replay the client's
// exact bytes, then relay both ways with backpressure. One state enum; set_state() is the only
// place that changes it; finish() is the only exit path and records why the session ended.
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
#include "routing/client_hello.hpp"
#include "routing/starttls.hpp"
#include "routing/stream_header_sniffer.hpp"
#include "session/end_reason.hpp"
#include "tls/tls_stream.hpp"

namespace xs::app {
class Worker;
}
namespace xs::upstream {
class BackendState;
}

namespace xs::session {

enum class State {
    Sniffing,         // reading the client's stream header, or a Direct TLS ClientHello in
                      // passthrough (header_timeout running)
    Negotiating,      // terminate + STARTTLS: features sent, waiting for <starttls/>
    Handshaking,      // terminate: TLS handshake with the client (header_timeout running)
    Queued,           // waiting for admission to a backend (queue_timeout running)
    Connecting,       // TCP connect to a backend candidate (connect_timeout running)
    AwaitingBackend,  // header replayed; waiting for the backend's first bytes (backend_timeout)
    Relaying,         // bytes flow both ways
    Closing,          // one side finished: flushing to the other (close_linger running)
    Refusing,         // stream error written; flushing it, then closing (close_linger running)
    Closed,           // handles closing; freed when the last close callback has run
};
std::string_view to_string(State s);

enum Side : int { kClient = 0, kBackend = 1 };

class Session {
public:
    Session(app::Worker& worker, std::shared_ptr<const config::Config> cfg, std::size_t listener);
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Takes the accepted client fd and starts sniffing (or refuses at once when the source
    // address is over its rate). On failure the session finishes and frees itself; the caller
    // must not touch it after this returns.
    void start(int fd, const sockaddr_storage& peer);

    // Drain deadline: cut the session now.
    void cut() { finish(EndReason::Drained); }
    // Admission granted by the worker's queue (a slot is already held for `state`).
    void admitted();

    State state() const { return state_; }
    const config::BackendConfig& backend_config() const { return cfg_->backends[backend_index_]; }
    upstream::BackendState* queued_on() const { return state_ == State::Queued ? backend_state_ : nullptr; }

    // Intrusive list of the worker's sessions.
    Session* prev = nullptr;
    Session* next = nullptr;

private:
    struct WriteReq;

    // lifecycle (session.cpp)
    void set_state(State s);
    void on_header_bytes(const char* data, std::size_t len);
    void route();
    bool route_domain(std::string_view raw, bool has_to, bool xml_errors);
    void connect_next();
    void connect_now();
    void on_connected(int status);
    void on_backend_answered();
    void backend_failed(const char* what, bool passive_down);
    void on_timeout();
    void refuse(routing::StreamCondition c, std::string_view domain, std::string_view detail);
    void refuse_admission(metrics::Admission why);
    void discard_backend();
    void release_slot();
    void finish(EndReason r);
    void log_end();
    void on_handle_closed(uv_handle_t* h);

    // TLS phases (tls_front.cpp)
    void begin_tls_front();
    void on_hello_bytes(const char* data, std::size_t len);
    void offer_starttls();
    void on_negotiation_bytes(const char* data, std::size_t len);
    void start_handshake(std::string_view domain);
    void on_tls_bytes(const char* data, std::size_t len);
    void to_client(const char* data, std::size_t len);
    void close_tls();
    void tls_failed();
    bool write_proxy_header();

    // byte pump (relay.cpp)
    void on_read(Side from, ssize_t nread, const char* data);
    void on_client_bytes(const char* data, std::size_t len);
    void on_backend_bytes(const char* data, std::size_t len);
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
    bool refused_ = false;
    bool header_sent_ = false;        // the proxy sent its own stream header (STARTTLS offer)

    uv_tcp_t client_{};
    uv_timer_t timer_{};
    uv_tcp_t* backend_ = nullptr;  // heap: replaced on failover
    int open_handles_ = 0;

    std::unique_ptr<routing::StreamHeaderSniffer> sniffer_;  // only while sniffing
    std::unique_ptr<routing::ClientHelloSniffer> hello_;     // Direct TLS passthrough, sniffing
    std::unique_ptr<routing::StartTlsReader> starttls_;      // only while negotiating
    std::unique_ptr<tls::TlsStream> tls_;                    // terminate: the client's TLS
    std::string replay_;              // the client's bytes so far; freed once relaying
    std::string domain_;              // normalised 'to'
    std::string content_ns_;
    std::vector<std::size_t> candidates_;  // backend indices, best first
    std::size_t next_candidate_ = 0;
    std::size_t backend_index_ = 0;   // into cfg_->backends, valid once a candidate is chosen
    std::string_view route_name_;
    upstream::BackendState* backend_state_ = nullptr;
    bool holding_slot_ = false;       // an admission slot of backend_state_
    bool counted_live_ = false;       // counted in backend_state_->sessions()
    bool limited_ = false;            // some candidate was skipped for its limits

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

    std::array<std::size_t, 2> pending_{0, 0};  // bytes queued towards each side
    std::array<bool, 2> reading_{false, false};
    std::array<bool, 2> finished_{false, false};  // read side saw EOF or error
    std::array<bool, 2> paused_{false, false};    // reading stopped by backpressure
};

}  // namespace xs::session
