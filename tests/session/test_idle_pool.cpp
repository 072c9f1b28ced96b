// The worker's idle pool of backend connections over loopback sockets: a connection keeps its
// read interest from its owner to the pool and back (the reads go to whoever owns it now, through
// ConnReader), and a parked connection that says anything or closes is dropped.
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "fake_host.hpp"
#include "upstream/idle_pool.hpp"

using namespace xs;
using namespace xs::test;

namespace {

// An owner that records what it reads.
struct Recorder final : upstream::ConnReader {
    std::string got;
    ssize_t error = 0;  // UV_EOF or another error once seen
    char buf[256];
    void conn_buffer(uv_buf_t* b) override { *b = uv_buf_init(buf, sizeof buf); }
    void conn_read(uv_stream_t*, ssize_t n, const uv_buf_t* b) override {
        if (n > 0) got.append(b->base, static_cast<std::size_t>(n));
        else if (n < 0) error = n;
    }
};

// A connected heap handle (as the sessions make them) and the backend's end of it.
struct Conn {
    uv_tcp_t* h = nullptr;
    int peer = -1;
};

Conn connect(FakeHost& host, int lfd, int port) {
    Conn c;
    c.h = new uv_tcp_t{};
    REQUIRE(uv_tcp_init(host.loop(), c.h) == 0);
    REQUIRE(uv_tcp_open(c.h, connect_loopback(port)) == 0);
    c.peer = accept_one(lfd);
    REQUIRE(c.peer >= 0);
    return c;
}

void close_handle(uv_tcp_t* h) {
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_tcp_t*>(x); });
}

auto* as_stream(uv_tcp_t* h) { return reinterpret_cast<uv_stream_t*>(h); }

}  // namespace

TEST_CASE("idle pool: a connection reads on through park and take, for whoever owns it", "[pool]") {
    FakeHost host;
    int port = 0;
    int lfd = listen_loopback(&port);
    auto& pool = host.idle_pool();
    Conn c = connect(host, lfd, port);
    Recorder first, second;
    c.h->data = static_cast<upstream::ConnReader*>(&first);
    REQUIRE(upstream::ConnReader::read_start(as_stream(c.h)) == 0);
    REQUIRE(upstream::ConnReader::read_start(as_stream(c.h)) == 0);  // already reading: fine
    REQUIRE(write_all(c.peer, "answer"));
    REQUIRE(host.run_until([&] { return first.got == "answer"; }));

    std::string key = upstream::IdlePool::key_of("shard-1", "127.0.0.1:1");
    pool.park(key, c.h);
    CHECK(pool.idle() == 1);
    CHECK(pool.take(upstream::IdlePool::key_of("shard-2", "127.0.0.1:1")) == nullptr);
    uv_tcp_t* h = pool.take(key);
    REQUIRE(h == c.h);
    CHECK(h->data == nullptr);
    CHECK(pool.idle() == 0);
    // Nobody started reading again: the next answer reaches the new owner all the same.
    h->data = static_cast<upstream::ConnReader*>(&second);
    REQUIRE(write_all(c.peer, "next"));
    REQUIRE(host.run_until([&] { return second.got == "next"; }));
    CHECK(first.got == "answer");
    ::shutdown(c.peer, SHUT_WR);
    REQUIRE(host.run_until([&] { return second.error == UV_EOF; }));
    close_handle(h);
    ::close(c.peer);
    ::close(lfd);
}

TEST_CASE("idle pool: a parked connection that says anything or closes is dropped, reading or not when parked", "[pool]") {
    FakeHost host;
    int port = 0;
    int lfd = listen_loopback(&port);
    auto& pool = host.idle_pool();
    std::string key = upstream::IdlePool::key_of("shard-1", "127.0.0.1:1");
    Recorder owner;
    // Parked while reading; the backend then sends bytes.
    Conn talks = connect(host, lfd, port);
    talks.h->data = static_cast<upstream::ConnReader*>(&owner);
    REQUIRE(upstream::ConnReader::read_start(as_stream(talks.h)) == 0);
    pool.park(key, talks.h);
    // Parked while paused (its owner had stopped reading it); the backend then closes.
    Conn closes = connect(host, lfd, port);
    closes.h->data = static_cast<upstream::ConnReader*>(&owner);
    REQUIRE(upstream::ConnReader::read_start(as_stream(closes.h)) == 0);
    REQUIRE(uv_read_stop(as_stream(closes.h)) == 0);
    pool.park(key, closes.h);
    // Never read at all; stays quiet.
    Conn quiet = connect(host, lfd, port);
    pool.park(key, quiet.h);
    CHECK(pool.idle() == 3);

    REQUIRE(write_all(talks.peer, "HTTP/1.1 408 Request Timeout\r\n\r\n"));
    REQUIRE(host.run_until([&] { return pool.idle() == 2; }));
    ::close(closes.peer);
    REQUIRE(host.run_until([&] { return pool.idle() == 1; }));
    CHECK(owner.got.empty());  // the pool read them, not their former owner
    CHECK(owner.error == 0);
    CHECK(pool.take(key) == quiet.h);  // the one left
    CHECK(pool.take(key) == nullptr);
    close_handle(quiet.h);
    for (int fd : {talks.peer, quiet.peer, lfd}) ::close(fd);
}

TEST_CASE("idle pool: a closed pool closes what is parked and what comes later", "[pool]") {
    FakeHost host;
    int port = 0;
    int lfd = listen_loopback(&port);
    auto& pool = host.idle_pool();
    std::string key = upstream::IdlePool::key_of("shard-1", "127.0.0.1:1");
    Conn a = connect(host, lfd, port);
    Conn b = connect(host, lfd, port);
    pool.park(key, a.h);
    pool.close();
    CHECK(pool.idle() == 0);
    pool.park(key, b.h);
    CHECK(pool.idle() == 0);
    CHECK(pool.take(key) == nullptr);
    // Both backend ends see the proxy's close.
    for (int fd : {a.peer, b.peer}) {
        REQUIRE(host.run_until([&] {
            char c;
            return ::recv(fd, &c, 1, MSG_DONTWAIT) == 0;
        }));
    }
    for (int fd : {a.peer, b.peer, lfd}) ::close(fd);
}
