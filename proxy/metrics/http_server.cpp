#include "metrics/http_server.hpp"

#include <cstring>

namespace xs::metrics {

struct HttpServer::Conn {
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    uv_write_t write{};
    HttpServer* server = nullptr;
    std::string request;
    std::string response;
    int open_handles = 2;
    bool closing = false;
    char buf[1024];

    void close() {
        if (closing) return;
        closing = true;
        auto done = [](uv_handle_t* h) {
            auto* c = static_cast<Conn*>(h->data);
            if (--c->open_handles == 0) delete c;
        };
        uv_close(reinterpret_cast<uv_handle_t*>(&timer), done);
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp), done);
    }

    void respond(const HttpResponse& r, bool head) {
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
        const char* reason = r.status == 200 ? "OK" : r.status == 404 ? "Not Found"
                           : r.status == 405 ? "Method Not Allowed" : r.status == 503 ? "Service Unavailable"
                                                                                      : "Bad Request";
        response = "HTTP/1.1 " + std::to_string(r.status) + " " + reason + "\r\nContent-Type: " +
                   r.content_type + "\r\nContent-Length: " + std::to_string(r.body.size()) +
                   "\r\nConnection: close\r\n\r\n";
        if (!head) response += r.body;
        uv_buf_t b = uv_buf_init(response.data(), static_cast<unsigned>(response.size()));
        write.data = this;
        if (uv_write(&write, reinterpret_cast<uv_stream_t*>(&tcp), &b, 1,
                     [](uv_write_t* w, int) { static_cast<Conn*>(w->data)->close(); }) != 0)
            close();
    }

    void on_request() {
        auto line_end = request.find("\r\n");
        std::string line = request.substr(0, line_end);
        auto sp1 = line.find(' ');
        auto sp2 = line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
        if (sp1 == std::string::npos || sp2 == std::string::npos) {
            respond({400, "text/plain; charset=utf-8", "bad request\n"}, false);
            return;
        }
        std::string method = line.substr(0, sp1);
        std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
        if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
        if (method != "GET" && method != "HEAD") {
            respond({405, "text/plain; charset=utf-8", "GET only\n"}, false);
            return;
        }
        respond(server->handler_(path), method == "HEAD");
    }
};

bool HttpServer::listen(const config::SocketAddress& addr, std::string* error) {
    uv_tcp_init(loop_, &server_);
    server_.data = this;
    open_ = true;
    int rc = uv_tcp_bind(&server_, addr.sa(), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 128, on_connection);
    if (rc != 0) {
        if (error) *error = "cannot listen on " + addr.to_string() + ": " + uv_strerror(rc);
        close();
        return false;
    }
    return true;
}

config::SocketAddress HttpServer::bound() const {
    config::SocketAddress a;
    int len = sizeof a.storage;
    uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&a.storage), &len);
    a.len = static_cast<socklen_t>(len);
    return a;
}

void HttpServer::close() {
    if (!open_) return;
    open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
}

void HttpServer::on_connection(uv_stream_t* s, int status) {
    if (status < 0) return;
    auto* self = static_cast<HttpServer*>(s->data);
    auto* c = new Conn();
    c->server = self;
    uv_tcp_init(self->loop_, &c->tcp);
    uv_timer_init(self->loop_, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
        c->close();
        return;
    }
    uv_timer_start(&c->timer, [](uv_timer_t* t) { static_cast<Conn*>(t->data)->close(); }, 5000, 0);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
            auto* c = static_cast<Conn*>(h->data);
            *b = uv_buf_init(c->buf, sizeof c->buf);
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* b) {
            auto* c = static_cast<Conn*>(st->data);
            if (n < 0) {
                c->close();
                return;
            }
            c->request.append(b->base, static_cast<std::size_t>(n));
            if (c->request.find("\r\n\r\n") != std::string::npos ||
                c->request.find("\n\n") != std::string::npos) {
                c->on_request();
            } else if (c->request.size() > 8192) {
                c->respond({400, "text/plain; charset=utf-8", "request too large\n"}, false);
            }
        });
}

}  // namespace xs::metrics
