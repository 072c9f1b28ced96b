// One event loop on its own thread, with its own SO_REUSEPORT listening socket per listener.
// A session lives on one worker from accept to close. Other threads talk to a worker only
// through post_*(), which wake its loop with a uv_async_t.
#pragma once
#include <uv.h>

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "app/session_log.hpp"
#include "config/config.hpp"
#include "metrics/worker_stats.hpp"
#include "net/acceptor.hpp"

namespace xs::session {
class Session;
}
namespace xs::upstream {
class BackendState;
}

namespace xs::app {

class Worker {
public:
    // listen_fds[i] is this worker's socket for cfg->listeners[i]; the worker owns them.
    // stats: this worker's statistics, also held by the metrics collector.
    // connections: the process-wide count of client connections (for max_connections).
    Worker(unsigned id, std::shared_ptr<const config::Config> cfg, std::vector<int> listen_fds,
           std::shared_ptr<metrics::WorkerStats> stats,
           std::shared_ptr<std::atomic<int64_t>> connections, std::function<void()> on_exit);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    void start();
    void join();

    // Thread-safe.
    void post_drain();                                      // stop accepting; finish when idle
    void post_cut();                                        // cut every session now
    void post_config(std::shared_ptr<const config::Config> cfg);  // for new sessions

    // Loop thread only (used by sessions).
    uv_loop_t* loop() { return &loop_; }
    char* scratch() { return scratch_.get(); }
    static constexpr std::size_t kScratchSize = 64 * 1024;
    void session_started(session::Session* s);
    void session_ended(session::Session* s);
    unsigned id() const { return id_; }
    metrics::WorkerStats& stats() { return *stats_; }
    void session_log(const SessionLogEntry& e) { log_.write(e, uv_now(&loop_)); }
    // Scratch strings for TLS (decrypted input, records to send), reused by every session.
    std::string& tls_plain() { return tls_plain_; }
    std::string& tls_out() { return tls_out_; }
    std::string stream_id();  // unpredictable id for the proxy's own stream headers

    // Admission queue per backend (sessions waiting for a slot). enqueue() fails when the
    // queue holds max_queue sessions already. pump() admits waiting sessions while slots are
    // free; it runs when a slot is released here and, while any queue is not empty, every few
    // milliseconds (slots released by other workers, rate tokens).
    bool enqueue(upstream::BackendState* b, session::Session* s, unsigned max_queue);
    void dequeue(session::Session* s);
    void pump(upstream::BackendState* b);

private:

    void run();
    void apply_posted();
    void begin_drain();
    void cut_all();
    void maybe_exit();
    static void on_async(uv_async_t* a);
    bool on_accepted(std::size_t listener, int fd, const sockaddr_storage& peer);
    void pause_accepting(const char* why);
    void resume_accepting();
    static void on_resume_timer(uv_timer_t* t);
    static void on_drain_timer(uv_timer_t* t);
    static void on_pump_timer(uv_timer_t* t);
    static void on_housekeeping(uv_timer_t* t);

    unsigned id_;
    std::shared_ptr<const config::Config> cfg_;
    std::vector<int> fds_;
    std::function<void()> on_exit_;
    std::thread thread_;

    uv_loop_t loop_{};
    uv_async_t async_{};
    uv_timer_t drain_timer_{};
    uv_timer_t pump_timer_{};
    uv_timer_t housekeeping_{};
    std::shared_ptr<metrics::WorkerStats> stats_;
    SessionLog log_;
    std::map<upstream::BackendState*, std::deque<session::Session*>> queues_;
    bool pump_running_ = false;
    std::string tls_plain_, tls_out_;
    std::mt19937_64 rng_{std::random_device{}()};
    std::vector<std::unique_ptr<net::Acceptor>> listeners_;
    uv_timer_t resume_timer_{};
    bool accept_paused_ = false;
    uint64_t last_pause_log_ms_ = 0;
    std::shared_ptr<std::atomic<int64_t>> connections_;  // all workers' client connections
    std::unique_ptr<char[]> scratch_;

    session::Session* sessions_ = nullptr;
    std::size_t live_ = 0;
    bool draining_ = false;
    bool exiting_ = false;

    std::mutex mu_;  // guards the posted_* fields
    bool posted_drain_ = false;
    bool posted_cut_ = false;
    bool closed_ = false;
    std::shared_ptr<const config::Config> posted_cfg_;
};

}  // namespace xs::app
