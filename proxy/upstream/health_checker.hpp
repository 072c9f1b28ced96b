// Active health check of one backend, on the daemon's loop: every check_interval, connect
// (check = "tcp") or connect and open a stream and wait for the backend's stream header
// (check = "stream"), within check_timeout. `rise` passes in a row bring a down backend back;
// `fall` failures in a row take it down. Transitions are logged.
#pragma once
#include <uv.h>

#include <memory>
#include <string>

#include "config/config.hpp"

namespace xs::upstream {

class BackendState;

class HealthChecker {
public:
    HealthChecker(uv_loop_t* loop, std::shared_ptr<BackendState> state, config::BackendConfig cfg);
    void start();
    // Stops checking; the checker deletes itself once its handles are closed.
    void stop();
    const config::BackendConfig& config() const { return cfg_; }

private:
    ~HealthChecker() = default;
    void probe();
    void on_connected(int status);
    void on_data(ssize_t n, const char* data);
    void pass();
    void fail(const std::string& why);
    void end_probe();
    void handle_closed();

    uv_loop_t* loop_;
    std::shared_ptr<BackendState> state_;
    config::BackendConfig cfg_;
    std::string header_;
    uv_timer_t interval_{};
    uv_timer_t deadline_{};
    uv_tcp_t* tcp_ = nullptr;
    std::string got_;
    char buf_[512];
    int open_handles_ = 0;
    bool stopping_ = false;
};

}  // namespace xs::upstream
