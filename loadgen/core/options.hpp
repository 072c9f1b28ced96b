// Command line of xmpp-shard-loadgen: parsed into plain values, every problem reported.
// loadgen/README.md documents each option; keep the two in step (usage() prints the same).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace xs::loadgen {

enum class AuthMode { Auto, Plain, Scram, Anonymous, None };
enum class TransportKind { Tcp, WebSocket, Bosh };

struct Options {
    std::string scenario;  // join-storm | brewery | jitsi | jitsi-web | steady | churn

    // Where and how clients connect.
    std::string server = "127.0.0.1:5222";
    bool server_given = false;             // jitsi-web defaults it to the HTTP port
    std::string brewery_server;            // default: server
    std::vector<std::string> sources;      // local addresses to bind, round robin
    bool starttls = false;
    bool tls = false;                      // websocket/bosh over TLS (wss://, https://)
    TransportKind transport = TransportKind::Tcp;  // of participants and steady/churn sessions
    bool transport_given = false;
    // --transport-mix: participants/sessions spread over these (weight each), see transport_cycle
    std::vector<std::pair<TransportKind, int>> transport_mix;
    std::string ws_path = "/xmpp-websocket";
    std::string bosh_path = "/http-bind";
    int bosh_wait = 60;                    // the session creation's wait='' (seconds)
    std::string http_host;                 // Host header (WebSocket, BOSH); default: the domain
    std::string room_param = "room";       // ?room=<room name> on a room's participants
    std::vector<std::string> domains = {"meet.test"};   // rooms spread over these, round robin
    std::string muc = "conference.{domain}";
    std::string user;                      // template with {i}; empty: anonymous
    std::string password;
    AuthMode auth = AuthMode::Auto;
    int concurrency = 100;                 // connections being set up at once
    double connect_rate = 0;               // new connections per second; 0 = unlimited
    std::string room_prefix;               // default: random per run

    // join-storm (and the client half of jitsi)
    int rooms = 1;
    int room_size = 10;
    double stay = 5;
    int messages = 2;
    std::size_t presence_bytes = 1024;
    double join_spread = 0;                // seconds over which the joins are spread; 0 = at once

    // brewery (and the brewery half of jitsi)
    int bridges = 10;
    double interval = 5;
    std::size_t stats_bytes = 1500;
    double duration = 30;                  // brewery and steady
    std::string brewery_domain = "auth.meet.test";
    std::string brewery_muc = "internal.{domain}";
    std::string brewery_room = "JvbBrewery";
    std::string bridge_user = "jvb";       // template with {i}
    std::string bridge_password;
    std::string focus_user = "focus";
    std::string focus_password;
    AuthMode brewery_auth = AuthMode::Auto;

    // steady / churn
    int clients = 100;
    double rate = 100;                     // messages per second, all clients together
    double warmup = 1;
    bool to_room = false;                  // --target room: groupchat in rooms of room_size

    // timeouts (seconds)
    double connect_timeout = 10;
    double login_timeout = 30;
    double join_timeout = 30;
    double message_timeout = 10;
    double max_time = 900;

    // output
    std::string json_path;
    std::string csv_path;                  // --watch samples
    std::string svg_path;                  // --watch chart
    std::vector<std::pair<std::string, int>> watch;  // name=PID
    double sample_interval = 0.2;
    std::string label;
    bool quiet = false;
    bool strict = false;                   // exit 3 if any error was counted
    std::uint64_t seed = 0;                // 0: from the clock
};

struct ParseResult {
    Options opts;
    std::vector<std::string> errors;
    bool help = false;
    bool version = false;
};

ParseResult parse_options(const std::vector<std::string>& args);
std::string usage();
const char* auth_mode_name(AuthMode m);
const char* transport_name(TransportKind t);
// The transport of participant/session number i is cycle[i % cycle.size()]: --transport alone,
// or the --transport-mix weights interleaved (smooth weighted round robin over the weights
// divided by their gcd, so websocket=90,bosh=10 gives one BOSH client in every 10).
std::vector<TransportKind> transport_cycle(const Options& o);
// "websocket", or the mix as given, e.g. "websocket=90,bosh=10".
std::string transport_setting(const Options& o);
// Participants/sessions speak HTTP (WebSocket or BOSH), so the brewery needs its own TCP port.
bool http_clients(const Options& o);

// "HOST:PORT" -> host and port; false if malformed.
bool split_host_port(const std::string& s, std::string& host, int& port);

}  // namespace xs::loadgen
