// One event loop on its own thread, with its own SO_REUSEPORT listening socket per listener.
// A session lives on one worker from accept to close. Other threads talk to a worker only
// through post_*(), which wake its loop with a uv_async_t.
#pragma once
#include <uv.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <random>
#include <string>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "metrics/worker_stats.hpp"
#include "net/acceptor.hpp"
#include "session/host.hpp"
#include "session/session_log.hpp"
#include "session/snapshot.hpp"
#include "upstream/admission_queue.hpp"
#include "upstream/idle_pool.hpp"

namespace xs::app {

class Worker final : public session::SessionHost {
public:
    // listen_fds[i] is this worker's socket for cfg->listeners[i]; the worker owns them.
    // stats: this worker's statistics, also held by the metrics collector.
    // connections: the process-wide count of client connections (for max_connections).
    Worker(unsigned id, std::shared_ptr<const session::Snapshot> snap, std::vector<int> listen_fds,
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
    void post_snapshot(std::shared_ptr<const session::Snapshot> snap);  // for new sessions

    // session::SessionHost (loop thread only).
    uv_loop_t* loop() override { return &loop_; }
    char* scratch() override { return scratch_.get(); }
    std::size_t scratch_size() const override { return kScratchSize; }
    static constexpr std::size_t kScratchSize = 64 * 1024;
    std::string& tls_plain() override { return tls_plain_; }
    std::string& tls_out() override { return tls_out_; }
    metrics::WorkerStats& stats() override { return *stats_; }
    void session_log(const session::SessionLogEntry& e) override { log_.write(e, uv_now(&loop_)); }
    upstream::AdmissionQueue& admission() override { return admission_; }
    upstream::IdlePool& idle_pool() override { return idle_pool_; }
    bool draining() const override { return draining_; }
    std::string stream_id() override;
    void session_started(session::Session* s) override;
    void session_ended(session::Session* s) override;
    unsigned id() const { return id_; }

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
    static void on_housekeeping(uv_timer_t* t);

    const config::Config& cfg() const { return *snap_->cfg; }

    unsigned id_;
    std::shared_ptr<const session::Snapshot> snap_;
    std::vector<int> fds_;
    std::function<void()> on_exit_;
    std::thread thread_;

    uv_loop_t loop_{};
    uv_async_t async_{};
    uv_timer_t drain_timer_{};
    uv_timer_t housekeeping_{};
    std::shared_ptr<metrics::WorkerStats> stats_;
    session::SessionLog log_;
    upstream::AdmissionQueue admission_;
    upstream::IdlePool idle_pool_;
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
    std::shared_ptr<const session::Snapshot> posted_snap_;
};

}  // namespace xs::app
