// A SessionHost for tests: its own loop, scratch buffers, statistics, admission queue and a
// record of session-log entries and live sessions. Plus helpers for loopback sockets and a
// config built from TOML text.
#pragma once
#include <uv.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "metrics/worker_stats.hpp"
#include "session/host.hpp"
#include "session/session.hpp"
#include "session/session_log.hpp"
#include "session/snapshot.hpp"
#include "upstream/admission_queue.hpp"
#include "upstream/idle_pool.hpp"

namespace xs::test {

struct LoggedEnd {
    std::string domain, backend, reason, condition;
    uint64_t to_backend = 0, to_client = 0;
    bool error = false;
};

class FakeHost final : public session::SessionHost {
public:
    FakeHost();
    ~FakeHost();
    uv_loop_t* loop() override { return &loop_; }
    char* scratch() override { return scratch_.data(); }
    std::size_t scratch_size() const override { return scratch_.size(); }
    std::string& tls_plain() override { return plain_; }
    std::string& tls_out() override { return out_; }
    metrics::WorkerStats& stats() override { return stats_; }
    void session_log(const session::SessionLogEntry& e) override;
    upstream::AdmissionQueue& admission() override { return admission_; }
    upstream::IdlePool& idle_pool() override { return pool_; }
    bool draining() const override { return draining_now; }
    std::string stream_id() override { return "fakeid"; }
    void session_started(session::Session* s) override { live.insert(s); }
    void session_ended(session::Session* s) override { live.erase(s); }

    // Runs the loop until pred() holds or `ms` pass; returns pred().
    template <typename P>
    bool run_until(P pred, int ms = 3000);

    std::set<session::Session*> live;
    bool draining_now = false;
    std::vector<LoggedEnd> ends;

private:
    uv_loop_t loop_{};
    std::vector<char> scratch_ = std::vector<char>(64 * 1024);
    std::string plain_, out_;
    metrics::WorkerStats stats_;
    upstream::AdmissionQueue admission_;
    upstream::IdlePool pool_;
};

// A snapshot from TOML text (the test fails on config errors) with fresh runtime state.
std::shared_ptr<const session::Snapshot> snapshot_from(const std::string& toml);

// Loopback TCP helpers (blocking fds; the peer side of the test).
int listen_loopback(int* port);             // a listening socket on 127.0.0.1:0
int connect_loopback(int port, int rcvbuf = 0);  // connected, blocking; rcvbuf: SO_RCVBUF first
int accept_one(int lfd);                    // blocking accept
void set_nonblocking(int fd);
std::string read_some(int fd, int timeout_ms = 50);  // whatever arrives within the timeout
bool write_all(int fd, std::string_view bytes);

template <typename P>
bool FakeHost::run_until(P pred, int ms) {
    uint64_t deadline = uv_hrtime() + static_cast<uint64_t>(ms) * 1000000;
    while (!pred() && uv_hrtime() < deadline) uv_run(&loop_, UV_RUN_NOWAIT);
    return pred();
}

}  // namespace xs::test
