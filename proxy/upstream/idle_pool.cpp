#include "upstream/idle_pool.hpp"

#include <algorithm>

namespace xs::upstream {

int ConnReader::read_start(uv_stream_t* h) {
    int rc = uv_read_start(h, on_alloc, on_read);
    return rc == UV_EALREADY ? 0 : rc;
}

void ConnReader::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    static_cast<ConnReader*>(h->data)->conn_buffer(buf);
}

void ConnReader::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    static_cast<ConnReader*>(s->data)->conn_read(s, nread, buf);
}

// A parked connection's owner: the pool and its bucket's key, to find it again on read or EOF.
struct IdlePool::Tag final : ConnReader {
    Tag(IdlePool* p, std::string k) : pool(p), key(std::move(k)) {}
    IdlePool* pool;
    std::string key;

    void conn_buffer(uv_buf_t* buf) override { *buf = uv_buf_init(pool->sink_, sizeof pool->sink_); }
    // Anything from an idle backend connection (bytes, EOF, an error) ends it.
    void conn_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) override {
        if (nread != 0) pool->drop(reinterpret_cast<uv_tcp_t*>(s));
    }
};

// Forgets a parked handle's tag and closes it (on_closed frees it).
void IdlePool::close_parked(uv_tcp_t* h) {
    delete static_cast<Tag*>(static_cast<ConnReader*>(h->data));
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
    h->data = static_cast<ConnReader*>(new Tag(this, key));
    // Usually reading already (the session read the response through the same callbacks), so
    // this changes nothing in epoll; a connection paused by backpressure starts reading here.
    if (!open_ || bucket.size() >= kMaxPerBackend ||
        ConnReader::read_start(reinterpret_cast<uv_stream_t*>(h)) != 0) {
        close_parked(h);
        return;
    }
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
    delete static_cast<Tag*>(static_cast<ConnReader*>(h->data));
    h->data = nullptr;
    return h;
}

void IdlePool::drop(uv_tcp_t* h) {
    auto* tag = static_cast<Tag*>(static_cast<ConnReader*>(h->data));
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
