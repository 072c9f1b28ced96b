// xmpp-shard-stub-backend: a minimal, fast XMPP "server" for measuring a proxy alone.
// For each connection it waits for the client's stream header, answers with its own header and
// empty <stream:features/>, then either discards (default) or echoes (--echo) everything the
// client sends, until the client's </stream:stream>, which it answers before closing.
// One libuv loop; no XML parsing beyond finding the header's end and the closing tag.
//
//   xmpp-shard-stub-backend --listen 127.0.0.1:PORT [--listen ...] [--echo]
#include <uv.h>

#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

bool g_echo = false;
char g_buf[64 * 1024];
const char kHeader[] =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' id='stub' version='1.0'><stream:features/>";
const char kClose[] = "</stream:stream>";

struct Conn {
    uv_tcp_t tcp;
    std::string head;      // bytes until the stream header is complete
    bool opened = false;
    std::string tail;      // last bytes seen, to find </stream:stream> across reads
    bool closing = false;
};

struct WriteReq {
    uv_write_t req;
    std::string data;
};

void on_closed(uv_handle_t* h) { delete static_cast<Conn*>(h->data); }

void close_conn(Conn* c) {
    if (c->closing) return;
    c->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
}

void on_write(uv_write_t* req, int) { delete static_cast<WriteReq*>(req->data); }

void send(Conn* c, const char* data, std::size_t n) {
    auto* s = reinterpret_cast<uv_stream_t*>(&c->tcp);
    uv_buf_t b = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(n));
    int r = uv_try_write(s, &b, 1);
    if (r == static_cast<int>(n)) return;
    std::size_t done = r > 0 ? static_cast<std::size_t>(r) : 0;
    if (r < 0 && r != UV_EAGAIN) return close_conn(c);
    auto* w = new WriteReq{{}, std::string(data + done, n - done)};
    w->req.data = w;
    uv_buf_t wb = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, s, &wb, 1, on_write) < 0) {
        delete w;
        close_conn(c);
    }
}

void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* b) { *b = uv_buf_init(g_buf, sizeof g_buf); }

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(s->data);
    if (n < 0) return close_conn(c);
    if (n == 0 || c->closing) return;
    std::string_view data(buf->base, static_cast<std::size_t>(n));
    if (!c->opened) {
        c->head.append(data);
        auto st = c->head.find("stream");
        auto gt = st == std::string::npos ? std::string::npos : c->head.find('>', st);
        if (gt == std::string::npos) {
            if (c->head.size() > 8192) close_conn(c);
            return;
        }
        c->opened = true;
        send(c, kHeader, sizeof kHeader - 1);
        data = std::string_view(c->head).substr(gt + 1);
        std::string rest(data);
        c->head.clear();
        c->head.shrink_to_fit();
        if (rest.empty()) return;
        c->tail = rest;
    } else {
        c->tail.append(data);
    }
    bool closed = c->tail.find(kClose) != std::string::npos;
    if (g_echo && !closed) send(c, c->tail.data(), c->tail.size());
    if (closed) {
        send(c, kClose, sizeof kClose - 1);
        return close_conn(c);
    }
    // Keep only what could be the start of a split </stream:stream>.
    if (c->tail.size() > sizeof kClose) c->tail.erase(0, c->tail.size() - sizeof kClose);
    if (g_echo) c->tail.clear();
}

void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return;
    auto* c = new Conn;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) return close_conn(c);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
}

void on_signal(uv_signal_t* s, int) { uv_stop(s->loop); }

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> listens;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--echo") g_echo = true;
        else if (a == "--listen" && i + 1 < argc) listens.push_back(argv[++i]);
        else {
            std::fprintf(stderr, "usage: xmpp-shard-stub-backend --listen HOST:PORT [--listen ...] [--echo]\n");
            return 2;
        }
    }
    if (listens.empty()) {
        std::fprintf(stderr, "xmpp-shard-stub-backend: no --listen\n");
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_t* loop = uv_default_loop();
    std::vector<uv_tcp_t*> servers;
    for (const std::string& l : listens) {
        auto colon = l.rfind(':');
        sockaddr_in addr{};
        if (colon == std::string::npos ||
            uv_ip4_addr(l.substr(0, colon).c_str(), std::atoi(l.c_str() + colon + 1), &addr) != 0) {
            std::fprintf(stderr, "xmpp-shard-stub-backend: bad address %s\n", l.c_str());
            return 2;
        }
        auto* s = new uv_tcp_t;
        uv_tcp_init(loop, s);
        int r = uv_tcp_bind(s, reinterpret_cast<const sockaddr*>(&addr), 0);
        if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(s), 4096, on_connection);
        if (r != 0) {
            std::fprintf(stderr, "xmpp-shard-stub-backend: %s: %s\n", l.c_str(), uv_strerror(r));
            return 1;
        }
        servers.push_back(s);
    }
    uv_signal_t sigterm, sigint;
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    std::fprintf(stderr, "xmpp-shard-stub-backend: listening (%s)\n", g_echo ? "echo" : "discard");
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
