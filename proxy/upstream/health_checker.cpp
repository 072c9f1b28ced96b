#include "upstream/health_checker.hpp"

#include "routing/http_response.hpp"
#include "routing/proxy_v2.hpp"
#include "routing/stream_error.hpp"
#include "upstream/backend_state.hpp"
#include "util/log.hpp"

namespace xs::upstream {

HealthChecker::HealthChecker(uv_loop_t* loop, std::shared_ptr<BackendState> state,
                             config::BackendConfig cfg)
    : loop_(loop), state_(std::move(state)), cfg_(std::move(cfg)) {
    // A backend that expects PROXY v2 gets a LOCAL header first (a connection of the proxy's own).
    if (cfg_.proxy_protocol_v2) {
        routing::proxy_v2::Header local;
        local.local = true;
        routing::proxy_v2::build(local, header_);
    }
    if (cfg_.check == config::CheckKind::Http)
        header_ += "GET " + cfg_.check_path + " HTTP/1.1\r\nHost: " + cfg_.probe_domain +
                   "\r\nUser-Agent: xmpp-shard-health-check\r\nConnection: close\r\n\r\n";
    else
        header_ += "<?xml version='1.0'?><stream:stream to='" + routing::xml_escape(cfg_.probe_domain) +
                   "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
}

void HealthChecker::start() {
    uv_timer_init(loop_, &interval_);
    uv_timer_init(loop_, &deadline_);
    interval_.data = deadline_.data = this;
    open_handles_ = 2;
    probe();
    auto ms = static_cast<uint64_t>(cfg_.check_interval.count());
    uv_timer_start(&interval_, [](uv_timer_t* t) { static_cast<HealthChecker*>(t->data)->probe(); }, ms, ms);
}

void HealthChecker::stop() {
    if (stopping_) return;
    stopping_ = true;
    end_probe();
    auto closed = [](uv_handle_t* h) { static_cast<HealthChecker*>(h->data)->handle_closed(); };
    uv_close(reinterpret_cast<uv_handle_t*>(&interval_), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline_), closed);
}

void HealthChecker::handle_closed() {
    if (--open_handles_ == 0 && stopping_) delete this;
}

void HealthChecker::probe() {
    if (tcp_) return;  // the previous probe is still running (its deadline ends it)
    got_.clear();
    tcp_ = new uv_tcp_t{};
    uv_tcp_init(loop_, tcp_);
    tcp_->data = this;
    ++open_handles_;
    auto* req = new uv_connect_t{};
    req->data = this;
    int rc = uv_tcp_connect(req, tcp_, cfg_.address.sa(), [](uv_connect_t* r, int status) {
        auto* self = static_cast<HealthChecker*>(r->data);
        auto* h = r->handle;
        delete r;
        if (status == UV_ECANCELED || h != reinterpret_cast<uv_stream_t*>(self->tcp_)) return;
        self->on_connected(status);
    });
    if (rc != 0) {
        delete req;
        fail(std::string("connect: ") + uv_strerror(rc));
        return;
    }
    uv_timer_start(&deadline_, [](uv_timer_t* t) {
        static_cast<HealthChecker*>(t->data)->fail("no answer within check_timeout");
    }, static_cast<uint64_t>(cfg_.check_timeout.count()), 0);
}

void HealthChecker::on_connected(int status) {
    if (status != 0) {
        fail(std::string("connect: ") + uv_strerror(status));
        return;
    }
    if (cfg_.check == config::CheckKind::Tcp) {
        pass();
        return;
    }
    uv_buf_t b = uv_buf_init(header_.data(), static_cast<unsigned>(header_.size()));
    auto* w = new uv_write_t{};
    if (uv_write(w, reinterpret_cast<uv_stream_t*>(tcp_), &b, 1, [](uv_write_t* w, int) { delete w; }) != 0) {
        delete w;
        fail("write failed");
        return;
    }
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tcp_),
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
            auto* self = static_cast<HealthChecker*>(h->data);
            *b = uv_buf_init(self->buf_, sizeof self->buf_);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
            auto* self = static_cast<HealthChecker*>(s->data);
            if (s != reinterpret_cast<uv_stream_t*>(self->tcp_)) return;
            self->on_data(n, b->base);
        });
}

void HealthChecker::on_data(ssize_t n, const char* data) {
    if (n < 0) {
        const char* what = cfg_.check == config::CheckKind::Http ? "closed before answering"
                                                                 : "closed before sending a stream header";
        fail(n == UV_EOF ? what : uv_strerror(static_cast<int>(n)));
        return;
    }
    got_.append(data, static_cast<std::size_t>(n));
    if (cfg_.check == config::CheckKind::Http) {
        routing::HttpResponseReader r;
        switch (r.feed(got_)) {
            case routing::HeadStatus::NeedMore:
                if (got_.size() > 16384) fail("answer is not an HTTP response");
                return;
            case routing::HeadStatus::Reject:
                fail("answer is not an HTTP response: " + r.detail());
                return;
            case routing::HeadStatus::Done:
                if (r.head().status >= 200 && r.head().status < 300) pass();
                else fail("HTTP status " + std::to_string(r.head().status));
                return;
        }
        return;
    }
    // Any stream header counts (an XMPP server answers even an unknown 'to' with one).
    if (got_.find("stream") != std::string::npos && got_.find('>') != std::string::npos) {
        pass();
    } else if (got_.size() > 4096) {
        fail("answer is not an XMPP stream");
    }
}

void HealthChecker::pass() {
    end_probe();
    if (state_->check_passed(cfg_.rise)) log::warn("backend ", cfg_.name, " is UP (health check passed)");
}

void HealthChecker::fail(const std::string& why) {
    end_probe();
    if (state_->check_failed(cfg_.fall)) log::warn("backend ", cfg_.name, " is DOWN: ", why);
    else log::debug("backend ", cfg_.name, " health check failed: ", why);
}

void HealthChecker::end_probe() {
    if (!stopping_) uv_timer_stop(&deadline_);
    if (!tcp_) return;
    auto* h = reinterpret_cast<uv_handle_t*>(tcp_);
    tcp_ = nullptr;
    uv_close(h, [](uv_handle_t* h) {
        auto* self = static_cast<HealthChecker*>(h->data);
        delete reinterpret_cast<uv_tcp_t*>(h);
        self->handle_closed();
    });
}

}  // namespace xs::upstream
