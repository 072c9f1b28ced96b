#include "fake_host.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "config/loader.hpp"
#include "upstream/backend_state.hpp"
#include "upstream/bosh_sessions.hpp"

namespace xs::test {

FakeHost::FakeHost() {
    REQUIRE(uv_loop_init(&loop_) == 0);
    REQUIRE(admission_.init(&loop_) == 0);
    REQUIRE(pool_.init(&loop_) == 0);
}

FakeHost::~FakeHost() {
    admission_.close();
    pool_.close();
    // Let closing handles finish (sessions free themselves in their close callbacks).
    for (int i = 0; i < 100 && uv_run(&loop_, UV_RUN_NOWAIT) != 0; ++i) {
    }
    uv_loop_close(&loop_);
}

void FakeHost::session_log(const session::SessionLogEntry& e) {
    LoggedEnd l;
    l.domain = std::string(e.domain);
    l.backend = std::string(e.backend);
    l.reason = std::string(e.reason);
    l.condition = std::string(e.condition);
    l.to_backend = e.bytes_to_backend;
    l.to_client = e.bytes_to_client;
    l.error = e.error;
    ends.push_back(l);
}

std::shared_ptr<const session::Snapshot> snapshot_from(const std::string& toml) {
    auto r = config::load_config_string(toml, "test.toml");
    for (const auto& e : r.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(r.errors.empty());
    auto rt = std::make_shared<session::Runtime>();
    for (const auto& b : r.config->backends) rt->states.push_back(std::make_shared<upstream::BackendState>(b.name));
    for (std::size_t i = 0; i < r.config->listeners.size(); ++i) rt->limiters.push_back(nullptr);
    rt->bosh = std::make_shared<upstream::BoshSessions>();
    return std::make_shared<const session::Snapshot>(session::Snapshot{r.config, rt});
}

int listen_loopback(int* port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    *port = ntohs(a.sin_port);
    return fd;
}

int connect_loopback(int port, int rcvbuf) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

int accept_one(int lfd) {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1) return -1;
    return ::accept(lfd, nullptr, nullptr);
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::string read_some(int fd, int timeout_ms) {
    std::string out;
    char buf[4096];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, timeout_ms) == 1) {
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

bool write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

}  // namespace xs::test
