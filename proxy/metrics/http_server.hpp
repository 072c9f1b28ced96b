// A minimal HTTP/1.x server for /metrics and /healthz on the daemon's own loop (never on a
// worker's). One request per connection; GET and HEAD only; 8 KiB request limit; 5 s deadline.
#pragma once
#include <uv.h>

#include <functional>
#include <string>

#include "config/config.hpp"

namespace xs::metrics {

struct HttpResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

class HttpServer {
public:
    using Handler = std::function<HttpResponse(const std::string& path)>;

    HttpServer(uv_loop_t* loop, Handler handler) : loop_(loop), handler_(std::move(handler)) {}
    // Returns false (and the reason in *error) if it cannot listen.
    bool listen(const config::SocketAddress& addr, std::string* error);
    config::SocketAddress bound() const;
    void close();

private:
    struct Conn;
    static void on_connection(uv_stream_t* server, int status);

    uv_loop_t* loop_;
    Handler handler_;
    uv_tcp_t server_{};
    bool open_ = false;
};

}  // namespace xs::metrics
