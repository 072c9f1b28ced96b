#include "link.hpp"

namespace xs::loadgen {

struct Link::WriteReq {
    uv_write_t req;
    Link* link;
    std::string data;
};

Link::Link(uv_loop_t* loop, Owner& owner, std::size_t id) : owner_(owner), id_(id) {
    uv_tcp_init(loop, &tcp_);
    tcp_.data = this;
    connect_req_.data = this;
    uv_tcp_nodelay(&tcp_, 1);
}

bool Link::connect(const sockaddr* server, const sockaddr* source, std::string& kind, std::string& detail) {
    if (source) {
        int r = uv_tcp_bind(&tcp_, source, 0);
        if (r < 0) {
            kind = std::string("connect:") + uv_err_name(r);
            detail = "bind to source address";
            return false;
        }
    }
    int r = uv_tcp_connect(&connect_req_, &tcp_, server, on_connect);
    if (r < 0) {
        kind = std::string("connect:") + uv_err_name(r);
        detail = uv_strerror(r);
        return false;
    }
    return true;
}

void Link::on_connect(uv_connect_t* req, int status) {
    auto* l = static_cast<Link*>(req->data);
    if (l->closing_) return;
    if (status < 0)
        return l->owner_.link_failed(*l, std::string("connect:") + uv_err_name(status), uv_strerror(status));
    l->connected_ = true;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&l->tcp_), on_alloc, on_read);
    if (!l->pending_.empty()) {
        std::string p;
        p.swap(l->pending_);
        l->write_now(p);
        if (l->closing_) return;
    }
    l->owner_.link_connected(*l);
}

void Link::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    *buf = static_cast<Link*>(h->data)->owner_.link_buffer();
}

void Link::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* l = static_cast<Link*>(s->data);
    if (n == 0 || l->closing_) return;
    if (n < 0) return l->owner_.link_eof(*l, n == UV_EOF ? 0 : static_cast<int>(n));
    l->owner_.link_read(*l, buf->base, static_cast<std::size_t>(n));
}

void Link::write(std::string_view data) {
    if (closing_ || data.empty()) return;
    if (!connected_) {
        pending_.append(data);
        return;
    }
    write_now(data);
}

void Link::write_now(std::string_view data) {
    auto* s = reinterpret_cast<uv_stream_t*>(&tcp_);
    uv_buf_t b = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
    int r = uv_try_write(s, &b, 1);
    if (r == static_cast<int>(data.size())) return;
    if (r > 0) data.remove_prefix(static_cast<std::size_t>(r));
    else if (r != UV_EAGAIN) return owner_.link_failed(*this, std::string("closed:") + uv_err_name(r), "write failed");
    auto* w = new WriteReq{{}, this, std::string(data)};
    w->req.data = w;
    uv_buf_t wb = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    r = uv_write(&w->req, s, &wb, 1, on_write);
    if (r < 0) {
        delete w;
        owner_.link_failed(*this, std::string("closed:") + uv_err_name(r), "write failed");
    }
}

void Link::on_write(uv_write_t* req, int status) {
    auto* w = static_cast<WriteReq*>(req->data);
    Link* l = w->link;
    delete w;
    if (status < 0 && status != UV_ECANCELED && !l->closing_)
        l->owner_.link_failed(*l, std::string("closed:") + uv_err_name(status), "write failed");
}

void Link::close() {
    if (closing_) return;
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

void Link::on_close(uv_handle_t* h) {
    auto* l = static_cast<Link*>(h->data);
    l->owner_.link_gone(*l);
    delete l;
}

}  // namespace xs::loadgen
