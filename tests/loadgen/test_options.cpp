#include <catch2/catch.hpp>

#include <algorithm>

#include "core/options.hpp"

using namespace xs::loadgen;

namespace {
ParseResult parse(std::vector<std::string> a) { return parse_options(a); }
}  // namespace

TEST_CASE("options: defaults and a full join-storm line", "[options]") {
    auto r = parse({"join-storm", "--rooms", "20", "--room-size=50", "--server", "127.0.0.1:5333",
                    "--domain", "a.test,b.test", "--starttls", "--watch", "proxy=123", "--watch",
                    "prosody-0=456", "--json", "out.json", "--join-spread", "0.5"});
    INFO((r.errors.empty() ? "" : r.errors[0]));
    REQUIRE(r.errors.empty());
    const Options& o = r.opts;
    CHECK(o.scenario == "join-storm");
    CHECK(o.rooms == 20);
    CHECK(o.room_size == 50);
    CHECK(o.server == "127.0.0.1:5333");
    CHECK(o.brewery_server == "127.0.0.1:5333");  // defaults to --server
    CHECK(o.domains == std::vector<std::string>{"a.test", "b.test"});
    CHECK(o.starttls);
    REQUIRE(o.watch.size() == 2);
    CHECK(o.watch[1] == std::make_pair(std::string("prosody-0"), 456));
    CHECK(o.json_path == "out.json");
    CHECK(o.join_spread == Approx(0.5));
    CHECK(o.auth == AuthMode::Auto);
    CHECK(o.messages == 2);
}

TEST_CASE("options: every problem is reported", "[options]") {
    auto r = parse({"--rooms", "x", "--bogus", "--server", "nohost", "--watch", "proxy",
                    "--auth", "kerberos", "--starttls=1", "--rate"});
    CHECK(r.errors.size() == 8);  // 7 bad options + no scenario
    auto r2 = parse({"steady", "--auth", "scram"});
    REQUIRE(r2.errors.size() == 1);
    CHECK(r2.errors[0].find("--user") != std::string::npos);
    auto r3 = parse({"join-storm", "brewery"});
    CHECK(r3.errors.size() == 1);
    auto r4 = parse({"storm"});
    CHECK(r4.errors.size() == 1);
}

TEST_CASE("options: help and version", "[options]") {
    CHECK(parse({"--help"}).help);
    CHECK(parse({"--version"}).version);
    auto u = usage();
    CHECK(u.find("--presence-bytes") != std::string::npos);
    CHECK(u.find("join-storm") != std::string::npos);
}

TEST_CASE("options: host and port", "[options]") {
    std::string h;
    int p = 0;
    CHECK(split_host_port("127.0.0.1:5222", h, p));
    CHECK(h == "127.0.0.1");
    CHECK(p == 5222);
    CHECK(split_host_port("[::1]:5222", h, p));
    CHECK(h == "::1");
    CHECK_FALSE(split_host_port("127.0.0.1", h, p));
    CHECK_FALSE(split_host_port("127.0.0.1:0", h, p));
    CHECK_FALSE(split_host_port("127.0.0.1:70000", h, p));
    CHECK_FALSE(split_host_port(":5222", h, p));
}

TEST_CASE("options: --transport websocket and its path, Host and room parameter", "[options]") {
    auto d = parse({"join-storm"});
    REQUIRE(d.errors.empty());
    CHECK(d.opts.transport == TransportKind::Tcp);
    CHECK(d.opts.ws_path == "/xmpp-websocket");
    CHECK(d.opts.http_host.empty());
    CHECK(d.opts.room_param == "room");
    auto r = parse({"join-storm", "--transport", "websocket", "--ws-path", "/acme/xmpp-websocket",
                    "--ws-host", "meet.example.com", "--ws-room-param", "r"});
    REQUIRE(r.errors.empty());
    CHECK(r.opts.transport == TransportKind::WebSocket);
    CHECK(std::string(transport_name(r.opts.transport)) == "websocket");
    CHECK(r.opts.ws_path == "/acme/xmpp-websocket");
    CHECK(r.opts.http_host == "meet.example.com");
    CHECK(r.opts.room_param == "r");
    CHECK(parse({"join-storm", "--transport", "quic"}).errors.size() == 1);
    CHECK(parse({"join-storm", "--ws-path", "xmpp-websocket"}).errors.size() == 1);
    CHECK(parse({"join-storm", "--transport", "websocket", "--starttls"}).errors.size() == 1);
    CHECK(usage().find("--transport tcp|websocket") != std::string::npos);
    // The brewery stays on TCP: its port must be given apart from the HTTP one.
    CHECK(parse({"jitsi", "--transport", "websocket"}).errors.size() == 1);
    CHECK(parse({"jitsi", "--transport", "websocket", "--brewery-server", "127.0.0.1:5222"}).errors.empty());
}

TEST_CASE("options: --transport bosh, its path and wait", "[options]") {
    auto d = parse({"join-storm", "--transport", "bosh"});
    REQUIRE(d.errors.empty());
    CHECK(d.opts.transport == TransportKind::Bosh);
    CHECK(std::string(transport_name(TransportKind::Bosh)) == "bosh");
    CHECK(d.opts.bosh_path == "/http-bind");
    CHECK(d.opts.bosh_wait == 60);
    auto r = parse({"steady", "--transport", "bosh", "--bosh-path", "/acme/http-bind", "--bosh-wait", "10",
                    "--http-host", "meet.example.com", "--room-param", "room"});
    REQUIRE(r.errors.empty());
    CHECK(r.opts.bosh_path == "/acme/http-bind");
    CHECK(r.opts.bosh_wait == 10);
    CHECK(r.opts.http_host == "meet.example.com");
    CHECK(parse({"join-storm", "--bosh-path", "http-bind"}).errors.size() == 1);
    CHECK(parse({"join-storm", "--bosh-wait", "0"}).errors.size() == 1);
    CHECK(parse({"join-storm", "--transport", "bosh", "--starttls"}).errors.size() == 1);
    CHECK(parse({"jitsi", "--transport", "bosh"}).errors.size() == 1);  // --brewery-server
}

TEST_CASE("options: --tls is wss:// and https:// for the HTTP transports only", "[options]") {
    CHECK_FALSE(parse({"join-storm", "--transport", "bosh"}).opts.tls);
    auto r = parse({"steady", "--transport", "websocket", "--tls"});
    REQUIRE(r.errors.empty());
    CHECK(r.opts.tls);
    CHECK(parse({"join-storm", "--transport-mix", "websocket=9,bosh=1", "--tls"}).errors.empty());
    CHECK(parse({"jitsi-web", "--tls"}).errors.empty());  // the brewery stays on plain TCP
    CHECK(parse({"join-storm", "--tls"}).errors.size() == 1);  // tcp: --starttls
    CHECK(parse({"join-storm", "--transport", "bosh", "--tls", "--starttls"}).errors.size() == 1);
    CHECK(usage().find("--tls") != std::string::npos);
}

TEST_CASE("options: --transport-mix interleaves the transports by weight", "[options]") {
    auto r = parse({"join-storm", "--transport-mix", "websocket=90,bosh=10"});
    REQUIRE(r.errors.empty());
    REQUIRE(r.opts.transport_mix.size() == 2);
    CHECK(transport_setting(r.opts) == "websocket=90,bosh=10");
    CHECK(http_clients(r.opts));
    auto cycle = transport_cycle(r.opts);
    REQUIRE(cycle.size() == 10);  // 90:10 is 9:1
    CHECK(std::count(cycle.begin(), cycle.end(), TransportKind::Bosh) == 1);
    // Rooms of 10 get one BOSH participant each, rooms of 5 one in two.
    auto m = parse({"join-storm", "--transport-mix", "ws=2,bosh=1"}).opts;
    auto c3 = transport_cycle(m);
    CHECK(c3 == std::vector<TransportKind>{TransportKind::WebSocket, TransportKind::Bosh, TransportKind::WebSocket});
    auto half = transport_cycle(parse({"join-storm", "--transport-mix", "bosh=50,websocket=50"}).opts);
    CHECK(half == std::vector<TransportKind>{TransportKind::Bosh, TransportKind::WebSocket});
    auto only = transport_cycle(parse({"join-storm", "--transport-mix", "bosh=1,websocket=0"}).opts);
    CHECK(only == std::vector<TransportKind>{TransportKind::Bosh});
    CHECK(transport_cycle(parse({"join-storm"}).opts) == std::vector<TransportKind>{TransportKind::Tcp});
    CHECK(transport_setting(parse({"join-storm"}).opts) == "tcp");

    CHECK(parse({"join-storm", "--transport-mix", "tcp=1,bosh=1"}).errors.size() == 1);
    CHECK(parse({"join-storm", "--transport-mix", "bosh=1,bosh=2"}).errors.size() == 1);
    CHECK(parse({"join-storm", "--transport-mix", "bosh=0"}).errors.size() == 1);
    CHECK(parse({"join-storm", "--transport-mix", "bosh"}).errors.size() == 1);
    CHECK(parse({"join-storm", "--transport-mix", "bosh=-1"}).errors.size() == 1);
    CHECK(parse({"join-storm", "--transport-mix", "bosh=1", "--transport", "websocket"}).errors.size() == 1);
    CHECK(parse({"jitsi", "--transport-mix", "bosh=1"}).errors.size() == 1);  // --brewery-server
}

TEST_CASE("options: jitsi-web is jitsi with web participants", "[options]") {
    auto r = parse({"jitsi-web", "--domain", "meet.example.com"});
    REQUIRE(r.errors.empty());
    const Options& o = r.opts;
    CHECK(o.scenario == "jitsi-web");
    CHECK(o.server == "127.0.0.1:5280");
    CHECK(o.brewery_server == "127.0.0.1:5222");
    CHECK(o.transport == TransportKind::WebSocket);
    CHECK(o.room_size == 10);
    auto g = parse({"jitsi-web", "--server", "127.0.0.1:8080", "--brewery-server", "127.0.0.1:15222",
                    "--transport-mix", "websocket=90,bosh=10"});
    REQUIRE(g.errors.empty());
    CHECK(g.opts.server == "127.0.0.1:8080");
    CHECK(g.opts.brewery_server == "127.0.0.1:15222");
    CHECK(parse({"jitsi-web", "--transport", "bosh"}).opts.transport == TransportKind::Bosh);
    CHECK(parse({"jitsi-web", "--transport", "tcp"}).errors.size() == 1);
    CHECK(parse({"jitsi-web", "--domain", "a.test,b.test"}).errors.size() == 1);
    CHECK(usage().find("jitsi-web") != std::string::npos);
}
