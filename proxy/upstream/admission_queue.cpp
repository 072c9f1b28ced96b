#include "upstream/admission_queue.hpp"

#include <algorithm>

#include "upstream/backend_state.hpp"

namespace xs::upstream {

int AdmissionQueue::init(uv_loop_t* loop) {
    timer_.data = this;
    return uv_timer_init(loop, &timer_);
}

void AdmissionQueue::close() { uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr); }

bool AdmissionQueue::enqueue(BackendState* b, Waiter* w, unsigned max_queue) {
    auto& q = queues_[b];
    if (q.size() >= max_queue) return false;
    q.push_back(w);
    if (!running_) {
        running_ = true;
        uv_timer_start(&timer_, on_timer, kPumpMs, kPumpMs);
    }
    return true;
}

void AdmissionQueue::dequeue(BackendState* b, Waiter* w) {
    auto it = queues_.find(b);
    if (it == queues_.end()) return;
    auto& q = it->second;
    q.erase(std::remove(q.begin(), q.end(), w), q.end());
}

std::size_t AdmissionQueue::waiting(BackendState* b) const {
    auto it = queues_.find(b);
    return it == queues_.end() ? 0 : it->second.size();
}

void AdmissionQueue::pump(BackendState* b) {
    auto it = queues_.find(b);
    if (it == queues_.end()) return;
    auto& q = it->second;
    uint64_t now = uv_now(timer_.loop);
    while (!q.empty()) {
        Waiter* w = q.front();
        if (!b->try_acquire(w->wanted(), now)) break;
        q.pop_front();
        w->admitted();  // may release the slot again (and re-enter pump) if it fails at once
    }
}

void AdmissionQueue::on_timer(uv_timer_t* t) {
    auto* self = static_cast<AdmissionQueue*>(t->data);
    bool any = false;
    for (auto it = self->queues_.begin(); it != self->queues_.end();) {
        if (!it->second.empty()) self->pump(it->first);
        if (it->second.empty()) {
            it = self->queues_.erase(it);
        } else {
            any = true;
            ++it;
        }
    }
    if (!any) {
        self->running_ = false;
        uv_timer_stop(&self->timer_);
    }
}

}  // namespace xs::upstream
