#include "app/worker.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>

#include "session/session.hpp"
#include "upstream/backend_state.hpp"
#include "util/log.hpp"

namespace xs::app {

Worker::Worker(unsigned id, std::shared_ptr<const session::Snapshot> snap, std::vector<int> listen_fds,
               std::shared_ptr<metrics::WorkerStats> stats,
               std::shared_ptr<std::atomic<int64_t>> connections, std::function<void()> on_exit)
    : id_(id), snap_(std::move(snap)), fds_(std::move(listen_fds)), on_exit_(std::move(on_exit)),
      stats_(std::move(stats)), log_(cfg().proxy.log_format, cfg().proxy.session_log_rate),
      connections_(std::move(connections)), scratch_(new char[kScratchSize]) {
    // A loop, an async handle and timers cannot fail to initialise short of a broken system.
    int rc = uv_loop_init(&loop_);
    if (rc == 0) rc = uv_async_init(&loop_, &async_, on_async);
    async_.data = this;
    for (uv_timer_t* t : {&drain_timer_, &housekeeping_, &resume_timer_}) {
        if (rc == 0) rc = uv_timer_init(&loop_, t);
        t->data = this;
    }
    if (rc == 0) rc = admission_.init(&loop_);
    if (rc == 0) rc = idle_pool_.init(&loop_);
    if (rc != 0) log::die(std::string("worker: libuv initialisation: ") + uv_strerror(rc));
    uv_timer_start(&housekeeping_, on_housekeeping, 5000, 5000);
    for (std::size_t i = 0; i < fds_.size(); ++i) {
        net::Acceptor::Callbacks cb;
        cb.accepted = [this, i](int fd, const sockaddr_storage& peer) { return on_accepted(i, fd, peer); };
        cb.exhausted = [this](int err) {
            pause_accepting(err == EMFILE || err == ENFILE ? "out of file descriptors" : "out of memory");
        };
        listeners_.push_back(std::make_unique<net::Acceptor>(&loop_, fds_[i], std::move(cb)));
    }
}

Worker::~Worker() {
    join();
    uv_loop_close(&loop_);
}

void Worker::start() {
    for (auto& l : listeners_) l->resume();
    thread_ = std::thread([this] { run(); });
}

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

void Worker::run() {
    uv_run(&loop_, UV_RUN_DEFAULT);
    if (on_exit_) on_exit_();
}

void Worker::post_drain() {
    {
        std::lock_guard<std::mutex> g(mu_);
        posted_drain_ = true;
        if (closed_) return;
    }
    uv_async_send(&async_);
}

void Worker::post_cut() {
    {
        std::lock_guard<std::mutex> g(mu_);
        posted_drain_ = true;
        posted_cut_ = true;
        if (closed_) return;
    }
    uv_async_send(&async_);
}

void Worker::post_snapshot(std::shared_ptr<const session::Snapshot> snap) {
    {
        std::lock_guard<std::mutex> g(mu_);
        posted_snap_ = std::move(snap);
        if (closed_) return;
    }
    uv_async_send(&async_);
}

void Worker::on_async(uv_async_t* a) { static_cast<Worker*>(a->data)->apply_posted(); }

void Worker::apply_posted() {
    bool drain, cut;
    std::shared_ptr<const session::Snapshot> snap;
    {
        std::lock_guard<std::mutex> g(mu_);
        drain = posted_drain_;
        cut = posted_cut_;
        posted_cut_ = false;
        snap = std::move(posted_snap_);
    }
    if (snap) {
        snap_ = std::move(snap);  // live sessions keep the snapshot they started with
        log_.configure(cfg().proxy.log_format, cfg().proxy.session_log_rate);
    }
    if (drain) begin_drain();
    if (cut) cut_all();
}

bool Worker::on_accepted(std::size_t listener, int fd, const sockaddr_storage& peer) {
    if (draining_) {
        ::close(fd);
        return false;
    }
    auto* s = new session::Session(*this, snap_, listener);
    s->start(fd, peer);  // the session owns itself (and fd) from here on
    unsigned cap = cfg().proxy.max_connections;
    if (cap > 0 && connections_->load(std::memory_order_relaxed) >= cap) {
        pause_accepting("max_connections reached");
        return false;
    }
    return true;
}

// Connections wait in the kernel's backlog while paused. Accepting resumes when one of this
// worker's sessions ends, or after 250 ms (descriptors freed elsewhere in the process).
void Worker::pause_accepting(const char* why) {
    if (draining_) return;
    uint64_t now = uv_now(&loop_);
    if (!accept_paused_ && now - last_pause_log_ms_ >= 10'000) {  // one line per 10 s at most
        last_pause_log_ms_ = now;
        struct rlimit rl {};
        getrlimit(RLIMIT_NOFILE, &rl);
        log::warn("worker ", id_, ": ", why, ": pausing accepts (", live_, " connections on this worker, ",
                  connections_->load(), " in all, fd limit ", rl.rlim_cur, ")");
    }
    accept_paused_ = true;
    for (auto& l : listeners_) l->pause();
    uv_timer_start(&resume_timer_, on_resume_timer, 250, 0);
}

void Worker::resume_accepting() {
    if (!accept_paused_ || draining_) return;
    unsigned cap = cfg().proxy.max_connections;
    if (cap > 0 && connections_->load(std::memory_order_relaxed) >= cap) return;
    accept_paused_ = false;
    uv_timer_stop(&resume_timer_);
    for (auto& l : listeners_) l->resume();
}

void Worker::on_resume_timer(uv_timer_t* t) {
    auto* w = static_cast<Worker*>(t->data);
    w->resume_accepting();
    if (w->accept_paused_) uv_timer_start(&w->resume_timer_, on_resume_timer, 250, 0);
}

void Worker::session_started(session::Session* s) {
    s->next = sessions_;
    if (sessions_) sessions_->prev = s;
    sessions_ = s;
    ++live_;
    connections_->fetch_add(1, std::memory_order_relaxed);
}

void Worker::session_ended(session::Session* s) {
    if (s->prev) s->prev->next = s->next;
    else sessions_ = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = nullptr;
    --live_;
    connections_->fetch_sub(1, std::memory_order_relaxed);
    if (accept_paused_) resume_accepting();
    maybe_exit();
}

void Worker::begin_drain() {
    if (draining_) return;
    draining_ = true;
    uv_timer_stop(&resume_timer_);
    for (auto& l : listeners_) l->close();
    idle_pool_.close();
    // Keep-alive HTTP connections between requests end now; the others after their exchange.
    for (session::Session *s = sessions_, *next = nullptr; s; s = next) {
        next = s->next;
        s->end_if_idle();
    }
    log::info("worker ", id_, ": draining ", live_, " live session(s), up to ",
              cfg().proxy.drain_timeout.count(), " ms");
    uv_timer_start(&drain_timer_, on_drain_timer,
                   static_cast<uint64_t>(cfg().proxy.drain_timeout.count()), 0);
    maybe_exit();
}

void Worker::on_drain_timer(uv_timer_t* t) {
    auto* w = static_cast<Worker*>(t->data);
    if (w->live_ > 0) log::info("worker ", w->id_, ": drain timeout, cutting ", w->live_, " session(s)");
    w->cut_all();
}

void Worker::cut_all() {
    while (sessions_) sessions_->cut();  // cut() unlinks the session
}

void Worker::maybe_exit() {
    if (!draining_ || live_ > 0 || exiting_) return;
    exiting_ = true;
    {
        std::lock_guard<std::mutex> g(mu_);
        closed_ = true;  // no uv_async_send on a closing handle
    }
    log_.flush_summary(uv_now(&loop_));
    uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
    admission_.close();
    idle_pool_.close();
    uv_close(reinterpret_cast<uv_handle_t*>(&housekeeping_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&resume_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

std::string Worker::stream_id() {
    char buf[17];
    snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng_()));
    return buf;
}

void Worker::on_housekeeping(uv_timer_t* t) {
    auto* w = static_cast<Worker*>(t->data);
    w->log_.flush_summary(uv_now(&w->loop_));
}

}  // namespace xs::app
