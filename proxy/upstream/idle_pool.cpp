#include "upstream/idle_pool.hpp"

#include <algorithm>

namespace xs::upstream {

namespace {

// A parked handle's data: the pool and its bucket's key, to find it again on read or EOF.
struct Tag {
    IdlePool* pool;
    std::string key;
};

}  // namespace

// Forgets a parked handle's tag and closes it (on_closed frees it).
void IdlePool::close_parked(uv_tcp_t* h) {
    delete static_cast<Tag*>(h->data);
    h->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(h), on_closed);
}

int IdlePool::init(uv_loop_t* loop) {
    loop_ = loop;
    int rc = uv_timer_init(loop, &timer_);
    timer_.data = this;
    open_ = rc == 0;
    return rc;
}

void IdlePool::close() {
    if (!open_) return;
    open_ = false;
    for (auto& [key, bucket] : buckets_)
        for (Parked& p : bucket) close_parked(p.h);
    buckets_.clear();
    count_ = 0;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

std::string IdlePool::key_of(const std::string& name, const std::string& address) {
    return name + '\n' + address;
}

void IdlePool::park(const std::string& key, uv_tcp_t* h) {
    auto& bucket = buckets_[key];
    if (!open_ || bucket.size() >= kMaxPerBackend ||
        uv_read_start(reinterpret_cast<uv_stream_t*>(h), on_alloc, on_read) != 0) {
        h->data = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(h), on_closed);
        return;
    }
    h->data = new Tag{this, key};
    bucket.push_back({h, uv_now(loop_)});
    ++count_;
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_)))
        uv_timer_start(&timer_, on_timer, kSweepMs, kSweepMs);
}

uv_tcp_t* IdlePool::take(const std::string& key) {
    auto it = buckets_.find(key);
    if (it == buckets_.end() || it->second.empty()) return nullptr;
    uv_tcp_t* h = it->second.back().h;
    it->second.pop_back();
    --count_;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(h));
    delete static_cast<Tag*>(h->data);
    h->data = nullptr;
    return h;
}

void IdlePool::drop(uv_tcp_t* h) {
    auto* tag = static_cast<Tag*>(h->data);
    auto it = buckets_.find(tag->key);
    if (it != buckets_.end()) {
        auto& b = it->second;
        auto pos = std::find_if(b.begin(), b.end(), [h](const Parked& p) { return p.h == h; });
        if (pos != b.end()) {
            b.erase(pos);
            --count_;
        }
    }
    close_parked(h);
}

void IdlePool::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* pool = static_cast<Tag*>(h->data)->pool;
    *buf = uv_buf_init(pool->sink_, sizeof pool->sink_);
}

// Anything from an idle backend connection (bytes, EOF, an error) ends it.
void IdlePool::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
    if (nread == 0) return;
    auto* h = reinterpret_cast<uv_tcp_t*>(s);
    static_cast<Tag*>(h->data)->pool->drop(h);
}

void IdlePool::on_timer(uv_timer_t* t) { static_cast<IdlePool*>(t->data)->sweep(); }

void IdlePool::sweep() {
    uint64_t now = uv_now(loop_);
    for (auto& [key, bucket] : buckets_)
        while (!bucket.empty() && now - bucket.front().since >= idle_ms_) {
            uv_tcp_t* h = bucket.front().h;
            bucket.pop_front();
            --count_;
            close_parked(h);
        }
    std::erase_if(buckets_, [](const auto& kv) { return kv.second.empty(); });
    if (count_ == 0) uv_timer_stop(&timer_);
}

void IdlePool::on_closed(uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); }

}  // namespace xs::upstream
