// session::SessionLog: the session-end line (key=value and JSON) and its rate limit. The lines go
// through util/log to stderr, which the tests capture by pointing fd 2 at a temporary file.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "session/session_log.hpp"
#include "util/log.hpp"

using xs::session::SessionLog;
using xs::session::SessionLogEntry;
using xs::config::LogFormat;

namespace {

struct Client {
    sockaddr_storage ss{};
    Client(const char* ip, uint16_t port) {
        if (std::string(ip).find(':') == std::string::npos) {
            auto* a = reinterpret_cast<sockaddr_in*>(&ss);
            a->sin_family = AF_INET;
            a->sin_port = htons(port);
            REQUIRE(inet_pton(AF_INET, ip, &a->sin_addr) == 1);
        } else {
            auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
            a->sin6_family = AF_INET6;
            a->sin6_port = htons(port);
            REQUIRE(inet_pton(AF_INET6, ip, &a->sin6_addr) == 1);
        }
    }
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

SessionLogEntry entry(const sockaddr* client) {
    SessionLogEntry e;
    e.client = client;
    e.listener = "c2s";
    e.domain = "meet.example.com";
    e.route = "client";
    e.backend = "shard1";
    e.duration_ms = 12;
    e.bytes_to_backend = 345;
    e.bytes_to_client = 6789;
    e.reason = "backend_closed";
    return e;
}

// Everything written to fd 2 while it lives; the lines without their time stamp.
class StderrCapture {
public:
    StderrCapture() {
        std::fflush(stderr);
        file_ = std::tmpfile();
        REQUIRE(file_);
        saved_ = ::dup(STDERR_FILENO);
        REQUIRE(saved_ >= 0);
        REQUIRE(::dup2(::fileno(file_), STDERR_FILENO) >= 0);
    }
    ~StderrCapture() {
        restore();
        std::fclose(file_);
    }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;

    // "LEVEL TEXT" per line written so far (the leading time stamp removed).
    std::vector<std::string> lines() {
        std::string all;
        char buf[4096];
        off_t off = 0;
        for (ssize_t n; (n = ::pread(::fileno(file_), buf, sizeof buf, off)) > 0; off += n) all.append(buf, n);
        std::vector<std::string> out;
        std::istringstream in(all);
        for (std::string line; std::getline(in, line);) {
            auto sp = line.find(' ');
            out.push_back(sp == std::string::npos ? line : line.substr(sp + 1));
        }
        return out;
    }

private:
    void restore() {
        if (saved_ < 0) return;
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        saved_ = -1;
    }
    std::FILE* file_ = nullptr;
    int saved_ = -1;
};

std::size_t count_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
    std::size_t n = 0;
    for (const auto& l : lines) n += l.rfind(prefix, 0) == 0;
    return n;
}

}  // namespace

TEST_CASE("SessionLog key=value: every field in order, IPv4 client with its port", "[session_log]") {
    Client c("192.0.2.7", 52496);
    SessionLog log(LogFormat::KeyValue, 20);
    CHECK(log.format(entry(c.sa())) ==
          "session_end client=192.0.2.7:52496 listener=c2s domain=meet.example.com route=client "
          "backend=shard1 duration_ms=12 bytes_to_backend=345 bytes_to_client=6789 reason=backend_closed");
}

TEST_CASE("SessionLog key=value: an IPv6 client is written in brackets", "[session_log]") {
    Client c("2001:db8::1", 5222);
    SessionLog log(LogFormat::KeyValue, 20);
    CHECK_THAT(log.format(entry(c.sa())),
               Catch::StartsWith("session_end client=[2001:db8::1]:5222 listener=c2s "));
    Client mapped("::ffff:192.0.2.7", 4000);
    CHECK_THAT(log.format(entry(mapped.sa())), Catch::StartsWith("session_end client=[::ffff:192.0.2.7]:4000 "));
}

TEST_CASE("SessionLog key=value: an unknown client, empty fields and a refusal's condition", "[session_log]") {
    SessionLog log(LogFormat::KeyValue, 20);
    SessionLogEntry e;
    e.listener = "c2s";
    e.domain = "nowhere.test";
    e.reason = "refused";
    e.condition = "host-unknown";
    CHECK(log.format(e) ==
          "session_end client=- listener=c2s domain=nowhere.test route=- backend=- duration_ms=0 "
          "bytes_to_backend=0 bytes_to_client=0 reason=refused condition=host-unknown");
    sockaddr_storage unspec{};
    unspec.ss_family = AF_UNSPEC;
    e.client = reinterpret_cast<const sockaddr*>(&unspec);
    e.condition = {};
    CHECK_THAT(log.format(e), Catch::StartsWith("session_end client=- "));
    CHECK_THAT(log.format(e), Catch::EndsWith(" reason=refused"));  // no condition key
}

TEST_CASE("SessionLog key=value: values with spaces, quotes, '=' or backslashes are quoted and escaped",
          "[session_log]") {
    Client c("192.0.2.7", 1);
    SessionLog log(LogFormat::KeyValue, 20);
    auto e = entry(c.sa());
    e.listener = "a b";
    e.route = "say \"hi\"";
    e.backend = "k=v";
    e.domain = "c:\\d";
    std::string line = log.format(e);
    CHECK_THAT(line, Catch::Contains(" listener=\"a b\" "));
    CHECK_THAT(line, Catch::Contains(" route=\"say \\\"hi\\\"\" "));
    CHECK_THAT(line, Catch::Contains(" backend=\"k=v\" "));
    CHECK_THAT(line, Catch::Contains(" domain=\"c:\\\\d\" "));
}

TEST_CASE("SessionLog key=value: control characters in a field cannot split or forge the line",
          "[session_log]") {
    // Listener, route and backend names come from the configuration (any TOML string); the line
    // must stay one line with one set of keys.
    Client c("192.0.2.7", 1);
    SessionLog log(LogFormat::KeyValue, 20);
    auto e = entry(c.sa());
    e.backend = "b\nsession_end client=6.6.6.6:1";
    e.route = "r\tx\x01";
    std::string line = log.format(e);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find('\t') == std::string::npos);
    CHECK(line.find('\x01') == std::string::npos);
    CHECK_THAT(line, Catch::Contains(" backend=\"b\\nsession_end client=6.6.6.6:1\" "));
    CHECK_THAT(line, Catch::Contains(" route=\"r\\tx\\x01\" "));
}

TEST_CASE("SessionLog JSON: one object with every field, numbers unquoted", "[session_log]") {
    Client c("192.0.2.7", 52496);
    SessionLog log(LogFormat::Json, 20);
    CHECK(log.format(entry(c.sa())) ==
          "{\"event\":\"session_end\",\"client\":\"192.0.2.7:52496\",\"listener\":\"c2s\","
          "\"domain\":\"meet.example.com\",\"route\":\"client\",\"backend\":\"shard1\",\"duration_ms\":12,"
          "\"bytes_to_backend\":345,\"bytes_to_client\":6789,\"reason\":\"backend_closed\"}");
}

TEST_CASE("SessionLog JSON: IPv6 client, empty fields, condition only for refusals", "[session_log]") {
    Client c("2001:db8::42", 5222);
    SessionLog log(LogFormat::Json, 20);
    auto e = entry(c.sa());
    CHECK_THAT(log.format(e), Catch::Contains("\"client\":\"[2001:db8::42]:5222\""));
    CHECK_THAT(log.format(e), !Catch::Contains("condition"));
    e.route = {};
    e.backend = {};
    e.reason = "refused";
    e.condition = "policy-violation";
    e.client = nullptr;
    std::string line = log.format(e);
    CHECK_THAT(line, Catch::Contains("\"client\":\"-\""));
    CHECK_THAT(line, Catch::Contains("\"route\":\"\",\"backend\":\"\""));
    CHECK_THAT(line, Catch::EndsWith(",\"reason\":\"refused\",\"condition\":\"policy-violation\"}"));
}

TEST_CASE("SessionLog JSON: quotes, backslashes and control characters are escaped", "[session_log]") {
    Client c("192.0.2.7", 1);
    SessionLog log(LogFormat::Json, 20);
    auto e = entry(c.sa());
    e.listener = "a\"b";
    e.route = "c\\d";
    e.backend = std::string_view("n\nt\t\x01\x1f" "\x7f", 7);
    e.domain = "caf\xc3\xa9.example";  // UTF-8 passes through
    std::string line = log.format(e);
    CHECK_THAT(line, Catch::Contains("\"listener\":\"a\\\"b\""));
    CHECK_THAT(line, Catch::Contains("\"route\":\"c\\\\d\""));
    CHECK_THAT(line, Catch::Contains("\"backend\":\"n\\u000at\\u0009\\u0001\\u001f\x7f\""));
    CHECK_THAT(line, Catch::Contains("\"domain\":\"caf\xc3\xa9.example\""));
    for (char ch : line) CHECK(static_cast<unsigned char>(ch) >= 0x20);
}

TEST_CASE("SessionLog: routine lines are bounded per second, the rest counted in a summary",
          "[session_log]") {
    xs::log::set_level(xs::log::Level::Info);
    Client c("192.0.2.7", 1);
    SessionLog log(LogFormat::KeyValue, 3);
    auto e = entry(c.sa());
    StderrCapture cap;
    for (int i = 0; i < 10; ++i) log.write(e, 50'000 + i);
    auto lines = cap.lines();
    CHECK(count_prefix(lines, "info session_end client=") == 3);
    CHECK(lines.size() == 3);
    log.flush_summary(50'500);
    lines = cap.lines();
    REQUIRE(lines.size() == 4);
    CHECK(lines[3] ==
          "info session_end lines not written in the last 1 s: 7 routine, 0 errors "
          "(see the xmpp_shard_session_ends_total metric)");
    log.flush_summary(50'600);  // nothing new dropped: nothing written
    CHECK(cap.lines().size() == 4);
    // The next second has a fresh budget.
    for (int i = 0; i < 10; ++i) log.write(e, 51'000);
    CHECK(count_prefix(cap.lines(), "info session_end client=") == 6);
}

TEST_CASE("SessionLog: the budget is per second from the first line, not per calendar second",
          "[session_log]") {
    xs::log::set_level(xs::log::Level::Info);
    Client c("192.0.2.7", 1);
    SessionLog log(LogFormat::KeyValue, 2);
    auto e = entry(c.sa());
    StderrCapture cap;
    log.write(e, 10'500);
    log.write(e, 10'900);
    log.write(e, 11'100);  // same window (10.5 .. 11.5 s): dropped
    CHECK(cap.lines().size() == 2);
    log.write(e, 11'499);
    CHECK(cap.lines().size() == 2);
    log.write(e, 11'500);  // new window
    CHECK(cap.lines().size() == 3);
}

TEST_CASE("SessionLog: error lines have their own budget and are written at warn", "[session_log]") {
    xs::log::set_level(xs::log::Level::Info);
    Client c("192.0.2.7", 1);
    SessionLog log(LogFormat::KeyValue, 1);
    auto routine = entry(c.sa());
    auto err = entry(c.sa());
    err.error = true;
    err.reason = "refused";
    err.condition = "host-unknown";
    StderrCapture cap;
    for (int i = 0; i < 5; ++i) log.write(routine, 7'000);  // 1 written, 4 dropped
    log.write(err, 7'001);
    auto lines = cap.lines();
    REQUIRE(lines.size() == 2);
    CHECK_THAT(lines[0], Catch::StartsWith("info session_end client="));
    CHECK_THAT(lines[1], Catch::StartsWith("warn session_end client="));
    CHECK_THAT(lines[1], Catch::EndsWith(" reason=refused condition=host-unknown"));
}

TEST_CASE("SessionLog: dropped error lines are never silent: the summary is a warning", "[session_log]") {
    xs::log::set_level(xs::log::Level::Info);
    Client c("192.0.2.7", 1);
    SessionLog log(LogFormat::Json, 0);  // 0: no routine lines at all
    auto routine = entry(c.sa());
    auto err = entry(c.sa());
    err.error = true;
    StderrCapture cap;
    const unsigned n = SessionLog::kErrorRate + 50;
    for (unsigned i = 0; i < n; ++i) log.write(err, 20'000);
    for (int i = 0; i < 5; ++i) log.write(routine, 20'000);
    auto lines = cap.lines();
    CHECK(lines.size() == SessionLog::kErrorRate);
    CHECK(count_prefix(lines, "warn {\"event\":\"session_end\"") == SessionLog::kErrorRate);
    log.flush_summary(22'400);  // the first drop was 2.4 s ago
    lines = cap.lines();
    REQUIRE(lines.size() == SessionLog::kErrorRate + 1);
    CHECK(lines.back() ==
          "warn session_end lines not written in the last 3 s: 5 routine, 50 errors "
          "(see the xmpp_shard_session_ends_total metric)");
}

TEST_CASE("SessionLog: configure changes the format and the routine budget", "[session_log]") {
    xs::log::set_level(xs::log::Level::Info);
    Client c("192.0.2.7", 1);
    SessionLog log(LogFormat::KeyValue, 1);
    auto e = entry(c.sa());
    CHECK_THAT(log.format(e), Catch::StartsWith("session_end "));
    log.configure(LogFormat::Json, 4);
    CHECK_THAT(log.format(e), Catch::StartsWith("{\"event\":\"session_end\""));
    StderrCapture cap;
    for (int i = 0; i < 10; ++i) log.write(e, 90'000);
    CHECK(cap.lines().size() == 4);
}
