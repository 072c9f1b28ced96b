// Admission queue of one worker: per backend, the sessions waiting for a slot (max_connecting,
// max_new_per_second). enqueue() fails when the backend's queue holds max_queue waiters
// already. pump() admits waiters while slots are free; it runs when a slot is released on this
// worker and, while any queue is not empty, every 5 ms (slots released by other workers, rate
// tokens). Loop thread only.
#pragma once
#include <uv.h>

#include <deque>
#include <map>

#include "config/config.hpp"

namespace xs::upstream {

class BackendState;

class Waiter {
public:
    virtual const config::BackendConfig& wanted() const = 0;  // the backend's limits
    virtual void admitted() = 0;  // a slot is held for the waiter now
protected:
    ~Waiter() = default;
};

class AdmissionQueue {
public:
    static constexpr uint64_t kPumpMs = 5;

    // Returns 0, or the libuv error of the timer's initialisation.
    int init(uv_loop_t* loop);
    void close();  // with the loop: stops the timer

    bool enqueue(BackendState* b, Waiter* w, unsigned max_queue);
    void dequeue(BackendState* b, Waiter* w);
    void pump(BackendState* b);
    std::size_t waiting(BackendState* b) const;

private:
    static void on_timer(uv_timer_t* t);

    uv_timer_t timer_{};
    bool running_ = false;
    std::map<BackendState*, std::deque<Waiter*>> queues_;
};

}  // namespace xs::upstream
