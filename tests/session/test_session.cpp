// Session over real loopback sockets with a fake host: relay and exact replay, failover replay
// to the next candidate, the opening timeout, half-close while waiting for the backend, the
// refusal linger, a reset in each waiting state.
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "fake_host.hpp"
#include "util/log.hpp"

using namespace xs;
using namespace xs::test;
using session::State;

namespace {

const std::string kHeader =
    "<?xml version='1.0'?><stream:stream to='meet.example.com' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

std::string config_for(int port_a, int port_b, const std::string& extra = "",
                       const std::string& backend_a = "") {
    return "[proxy]\nheader_timeout = \"300ms\"\nconnect_timeout = \"1s\"\nbackend_timeout = \"400ms\"\n"
           "close_linger = \"300ms\"\n" + extra +
           "[[listener]]\nname = \"c2s\"\nbind = \"127.0.0.1:0\"\n"
           "[[backend]]\nname = \"a\"\naddress = \"127.0.0.1:" + std::to_string(port_a) + "\"\n" + backend_a +
           "[[backend]]\nname = \"b\"\naddress = \"127.0.0.1:" + std::to_string(port_b) + "\"\n"
           "[[route]]\ndomains = [\"meet.example.com\"]\nbackends = [\"a\", \"b\"]\n";
}

// One session on the host, started on a fresh loopback connection; returns the client's fd.
struct Harness {
    FakeHost host;
    int front = -1;  // where the "accepted" connection comes from
    int front_port = 0;
    Harness() { front = listen_loopback(&front_port); }
    ~Harness() { ::close(front); }

    int open(std::shared_ptr<const session::Snapshot> snap, int rcvbuf = 0) {
        int client = connect_loopback(front_port, rcvbuf);
        int fd = accept_one(front);
        REQUIRE(fd >= 0);
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
        auto* s = new session::Session(host, std::move(snap), 0);
        started.push_back(s);
        s->start(fd, peer);
        return client;
    }
    session::Session* one() { return host.live.empty() ? nullptr : *host.live.begin(); }
    // The state of the session that was started n-th (0 first) while it lives.
    std::vector<session::Session*> started;
    State state() { return one() ? one()->state() : State::Closed; }
    State state_of(std::size_t n) { return host.live.count(started[n]) ? started[n]->state() : State::Closed; }
    upstream::BackendState* snapshot_state(const std::shared_ptr<const session::Snapshot>& s, std::size_t b) {
        return s->rt->states[b].get();
    }
    bool in(State s) { return host.run_until([&] { return state() == s; }); }
    bool ended() { return host.run_until([&] { return host.live.empty(); }); }
    int accept_backend(int lfd) {
        set_nonblocking(lfd);
        int fd = -1;
        host.run_until([&] {
            if (fd < 0) fd = ::accept(lfd, nullptr, nullptr);
            return fd >= 0;
        });
        return fd;
    }
    // Runs the loop while reading `fd` until `n` bytes came or time is up.
    std::string pump_read(int fd, std::size_t n, int ms = 2000) {
        std::string got;
        host.run_until([&] {
            got += read_some(fd, 1);
            return got.size() >= n;
        }, ms);
        return got;
    }
};

}  // namespace

TEST_CASE("a session replays the client's exact bytes and relays both ways", "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    Harness h;
    if (getenv("XS_DEBUG")) xs::log::set_level(xs::log::Level::Debug);
    int client = h.open(snapshot_from(config_for(pa, pb)));
    std::string first = kHeader + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
    REQUIRE(write_all(client, first));
    int backend = h.accept_backend(la);
    REQUIRE(backend >= 0);
    CHECK(h.pump_read(backend, first.size()) == first);
    CHECK(h.state() == State::AwaitingBackend);
    REQUIRE(write_all(backend, "<stream:stream>"));
    CHECK(h.pump_read(client, 15) == "<stream:stream>");
    CHECK(h.state() == State::Relaying);
    REQUIRE(write_all(client, "<presence/>"));
    CHECK(h.pump_read(backend, 11) == "<presence/>");
    ::close(client);  // a half-close for the backend, which then closes too
    char c;
    REQUIRE(h.host.run_until([&] { return ::recv(backend, &c, 1, MSG_DONTWAIT) == 0; }));
    CHECK(h.state() == State::Closing);
    ::close(backend);
    REQUIRE(h.ended());
    REQUIRE(h.host.ends.size() == 1);
    CHECK(h.host.ends[0].reason == "client_closed");
    CHECK(h.host.ends[0].backend == "a");
    CHECK(h.host.ends[0].to_backend == first.size() + 11);
    CHECK_FALSE(h.host.ends[0].error);
    ::close(la);
    ::close(lb);
}

TEST_CASE("failover replays the exact bytes to the next candidate", "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    Harness h;
    int client = h.open(snapshot_from(config_for(pa, pb)));
    std::string first = kHeader;
    REQUIRE(write_all(client, first.substr(0, 40)));
    REQUIRE(h.host.run_until([&] { return false; }, 30) == false);
    REQUIRE(write_all(client, first.substr(40)));
    int a = h.accept_backend(la);
    REQUIRE(a >= 0);
    CHECK(h.pump_read(a, first.size()) == first);
    // More client bytes while waiting: kept for the replay too.
    REQUIRE(write_all(client, "<x/>"));
    CHECK(h.pump_read(a, 4) == "<x/>");
    ::close(a);  // closes before answering: the next candidate gets everything again
    int b = h.accept_backend(lb);
    REQUIRE(b >= 0);
    CHECK(h.pump_read(b, first.size() + 4) == first + "<x/>");
    REQUIRE(write_all(b, "<ok/>"));
    CHECK(h.pump_read(client, 5) == "<ok/>");
    ::close(client);
    REQUIRE(h.ended());
    CHECK(h.host.ends[0].backend == "b");
    CHECK(h.host.stats().backend("a")->connect_failures.get() == 1);
    ::close(b);
    ::close(la);
    ::close(lb);
}

TEST_CASE("every candidate failing ends in remote-connection-failed", "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    ::close(la);  // refused connections
    ::close(lb);
    Harness h;
    int client = h.open(snapshot_from(config_for(pa, pb)));
    REQUIRE(write_all(client, kHeader));
    std::string got = h.pump_read(client, 1);
    got += h.pump_read(client, 100000, 300);
    CHECK(got.find("<remote-connection-failed") != std::string::npos);
    ::close(client);
    REQUIRE(h.ended());
    CHECK(h.host.ends[0].reason == "backend_connect_failed");
    CHECK(h.host.ends[0].error);
}

TEST_CASE("the opening timeout refuses with connection-timeout", "[session]") {
    Harness h;
    int client = h.open(snapshot_from(config_for(1, 2)));
    REQUIRE(write_all(client, "<?xml version='1.0'?>"));
    CHECK(h.in(State::Refusing));
    std::string got = h.pump_read(client, 1, 500);
    CHECK(got.find("<connection-timeout") != std::string::npos);
    // The refusal lingers (reading and dropping) until the client closes or close_linger.
    CHECK(h.state() == State::Refusing);
    ::close(client);
    REQUIRE(h.ended());
    CHECK(h.host.ends[0].condition == "connection-timeout");
}

TEST_CASE("a refusal lingers until close_linger when the client stays", "[session]") {
    Harness h;
    int client = h.open(snapshot_from(config_for(1, 2)));
    std::string other = kHeader;
    other.replace(other.find("meet.example.com"), 16, "nowhere.example");
    REQUIRE(write_all(client, other));
    CHECK(h.in(State::Refusing));
    CHECK(h.pump_read(client, 1).find("<host-unknown") != std::string::npos);
    REQUIRE(write_all(client, "<more/>"));  // dropped, not an error
    REQUIRE(h.ended());                     // close_linger (300 ms)
    CHECK(h.host.ends[0].condition == "host-unknown");
    ::close(client);
}

TEST_CASE("a half-close while awaiting the backend is passed on once it answers", "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    Harness h;
    int client = h.open(snapshot_from(config_for(pa, pb)));
    REQUIRE(write_all(client, kHeader));
    int a = h.accept_backend(la);
    REQUIRE(a >= 0);
    CHECK(h.pump_read(a, kHeader.size()) == kHeader);
    ::shutdown(client, SHUT_WR);
    REQUIRE(h.host.run_until([&] { return false; }, 50) == false);
    CHECK(h.state() == State::AwaitingBackend);
    REQUIRE(write_all(a, "</stream:stream>"));
    CHECK(h.pump_read(client, 16) == "</stream:stream>");
    // The backend now sees the client's FIN.
    char c;
    REQUIRE(h.host.run_until([&] { return ::recv(a, &c, 1, MSG_DONTWAIT) == 0; }));
    ::close(a);
    REQUIRE(h.ended());
    ::close(client);
    ::close(la);
    ::close(lb);
}

TEST_CASE("a reset in each waiting state ends the session at once", "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    auto reset = [](int fd) {
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd);
    };
    SECTION("opening") {
        Harness h;
        int client = h.open(snapshot_from(config_for(pa, pb)));
        REQUIRE(write_all(client, "<?xml "));
        reset(client);
        REQUIRE(h.host.run_until([&] { return h.host.live.empty(); }, 200));  // before header_timeout
        CHECK(h.host.ends[0].condition.empty());  // not refused: ended by the reset
    }
    SECTION("awaiting the backend") {
        Harness h;
        int client = h.open(snapshot_from(config_for(pa, pb)));
        REQUIRE(write_all(client, kHeader));
        int a = h.accept_backend(la);
        REQUIRE(h.in(State::AwaitingBackend));
        reset(client);
        REQUIRE(h.host.run_until([&] { return h.host.live.empty(); }, 200));
        CHECK(h.host.ends[0].reason == "client_error");
        ::close(a);
    }
    SECTION("refusing") {
        Harness h;
        int client = h.open(snapshot_from(config_for(pa, pb)));
        std::string other = kHeader;
        other.replace(other.find("meet.example.com"), 16, "nowhere.example");
        REQUIRE(write_all(client, other));
        REQUIRE(h.in(State::Refusing));
        reset(client);
        REQUIRE(h.host.run_until([&] { return h.host.live.empty(); }, 200));  // before close_linger
        CHECK(h.host.ends[0].condition == "host-unknown");
    }
    SECTION("queued") {
        auto snap = snapshot_from(config_for(pa, pb, "", "max_connecting = 1\n"));
        Harness h;
        int c1 = h.open(snap);
        REQUIRE(write_all(c1, kHeader));
        int a = h.accept_backend(la);
        REQUIRE(h.host.run_until([&] { return h.state_of(0) == State::AwaitingBackend; }));
        int c2 = h.open(snap);
        REQUIRE(write_all(c2, kHeader));
        REQUIRE(h.host.run_until([&] { return h.state_of(1) == State::Queued; }));
        reset(c2);
        REQUIRE(h.host.run_until([&] { return h.state_of(1) == State::Closed; }, 200));
        CHECK(h.host.stats().backend("a")->queued.get() == 0);  // left the queue
        CHECK(h.host.admission().waiting(h.snapshot_state(snap, 0)) == 0);
        ::close(c1);
        ::close(a);
        REQUIRE(h.ended());
    }
    SECTION("closing, backend side") {
        Harness h;
        int client = h.open(snapshot_from(config_for(pa, pb)));
        REQUIRE(write_all(client, kHeader));
        int a = h.accept_backend(la);
        REQUIRE(write_all(a, "<s/>"));
        REQUIRE(h.in(State::Relaying));
        ::shutdown(client, SHUT_WR);  // half-close: the backend's answer is still awaited
        REQUIRE(h.in(State::Closing));
        reset(a);
        REQUIRE(h.host.run_until([&] { return h.host.live.empty(); }, 200));  // before close_linger
        ::close(client);
    }
    SECTION("relaying, backend side") {
        Harness h;
        int client = h.open(snapshot_from(config_for(pa, pb)));
        REQUIRE(write_all(client, kHeader));
        int a = h.accept_backend(la);
        REQUIRE(write_all(a, "<s/>"));
        REQUIRE(h.in(State::Relaying));
        reset(a);
        REQUIRE(h.host.run_until([&] { return h.host.live.empty(); }, 500));
        CHECK(h.host.ends[0].reason == "backend_error");
        ::close(client);
    }
    ::close(la);
    ::close(lb);
}

TEST_CASE("a backend that does not answer in backend_timeout: the next candidate gets the replay",
          "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    Harness h;
    int client = h.open(snapshot_from(config_for(pa, pb)));
    REQUIRE(write_all(client, kHeader));
    int a = h.accept_backend(la);
    REQUIRE(a >= 0);
    CHECK(h.pump_read(a, kHeader.size()) == kHeader);  // and then silence
    int b = h.accept_backend(lb);                        // after backend_timeout (400 ms)
    REQUIRE(b >= 0);
    CHECK(h.pump_read(b, kHeader.size()) == kHeader);
    REQUIRE(write_all(b, "<s/>"));
    CHECK(h.pump_read(client, 4) == "<s/>");
    CHECK(h.host.stats().backend("a")->connect_failures.get() == 1);
    ::close(client);
    ::close(b);
    REQUIRE(h.ended());
    CHECK(h.host.ends[0].backend == "b");
    ::close(a);
    ::close(la);
    ::close(lb);
}

TEST_CASE("admission: a full backend queues the next session; queue_timeout refuses it, a freed slot admits",
          "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    std::string limits = "max_connecting = 1\nqueue_timeout = \"200ms\"\n";
    auto snap = snapshot_from(config_for(pa, pb, "", limits));
    Harness h;
    int c1 = h.open(snap);
    REQUIRE(write_all(c1, kHeader));
    int a1 = h.accept_backend(la);
    REQUIRE(a1 >= 0);
    REQUIRE(h.host.run_until([&] { return h.state_of(0) == State::AwaitingBackend; }));
    SECTION("queue_timeout") {
        int c2 = h.open(snap);
        REQUIRE(write_all(c2, kHeader));
        REQUIRE(h.host.run_until([&] { return h.state_of(1) == State::Queued; }));
        REQUIRE(h.host.run_until([&] { return h.state_of(1) == State::Refusing; }));
        std::string got = h.pump_read(c2, 1);
        CHECK(got.find("<policy-violation") != std::string::npos);
        CHECK(got.find("backend busy: waited too long") != std::string::npos);
        CHECK(h.host.stats().backend("a")->admission_refusals[metrics::Admission::QueueTimeout].get() == 1);
        ::close(c2);
    }
    SECTION("admitted when the slot is released") {
        int c2 = h.open(snap);
        REQUIRE(write_all(c2, kHeader));
        REQUIRE(h.host.run_until([&] { return h.state_of(1) == State::Queued; }));
        REQUIRE(write_all(a1, "<s/>"));  // the first session's backend answers: its slot is free
        CHECK(h.pump_read(c1, 4) == "<s/>");
        int a2 = h.accept_backend(la);
        REQUIRE(a2 >= 0);
        CHECK(h.pump_read(a2, kHeader.size()) == kHeader);
        CHECK(h.state_of(1) == State::AwaitingBackend);
        ::close(a2);
        ::close(c2);
    }
    ::close(c1);
    ::close(a1);
    REQUIRE(h.ended());
    ::close(la);
    ::close(lb);
}

TEST_CASE("closing: a backend that never closes after the client's FIN is cut after close_linger",
          "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    Harness h;
    int client = h.open(snapshot_from(config_for(pa, pb)));
    REQUIRE(write_all(client, kHeader));
    int a = h.accept_backend(la);
    REQUIRE(write_all(a, "<s/>"));
    REQUIRE(h.in(State::Relaying));
    ::shutdown(client, SHUT_WR);
    REQUIRE(h.in(State::Closing));
    REQUIRE(write_all(a, "<late/>"));  // still relayed while closing
    CHECK(h.pump_read(client, 11).substr(0, 11) == "<s/><late/>");
    REQUIRE(h.ended());  // close_linger (300 ms)
    CHECK(h.host.ends[0].reason == "timed_out");
    ::close(client);
    ::close(a);
    ::close(la);
    ::close(lb);
}

TEST_CASE("backpressure: a client that does not read stops the backend being read; it resumes intact",
          "[session]") {
    int pa = 0, pb = 0;
    int la = listen_loopback(&pa), lb = listen_loopback(&pb);
    Harness h;
    int client = h.open(snapshot_from(config_for(pa, pb, "high_water = 65536\nlow_water = 16384\n")), 16384);
    REQUIRE(write_all(client, kHeader));
    int a = h.accept_backend(la);
    REQUIRE(a >= 0);
    int small = 16384;
    ::setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    set_nonblocking(a);
    const std::size_t total = 8u << 20;
    std::string chunk(64 * 1024, '\0');
    std::size_t written = 0;
    auto write_more = [&] {
        for (;;) {
            if (written == total) return;
            for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>((written + i) % 251);
            ssize_t n = ::send(a, chunk.data(), std::min(chunk.size(), total - written), MSG_NOSIGNAL);
            if (n <= 0) return;
            written += static_cast<std::size_t>(n);
        }
    };
    // The client reads nothing: the backend can only fill the buffers in between.
    h.host.run_until([&] {
        write_more();
        return false;
    }, 500);
    CHECK(written < total / 4);
    CHECK(written > 65536);
    CHECK(h.state() == State::Relaying);
    // Now the client reads everything, and the backend can write the rest.
    std::size_t got = 0;
    bool intact = true;
    char buf[65536];
    h.host.run_until([&] {
        write_more();
        ssize_t n;
        while ((n = ::recv(client, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            for (ssize_t i = 0; i < n; ++i)
                if (static_cast<unsigned char>(buf[i]) != (got + static_cast<std::size_t>(i)) % 251) intact = false;
            got += static_cast<std::size_t>(n);
        }
        return got == total;
    }, 20000);
    CHECK(got == total);
    CHECK(intact);
    ::close(client);
    ::close(a);
    REQUIRE(h.ended());
    ::close(la);
    ::close(lb);
}
