#include "options.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>

namespace xs::loadgen {

namespace {

struct Spec {
    const char* name;
    const char* arg;  // nullptr: a flag
    const char* help;
    std::function<std::string(Options&, const std::string&)> set;  // "" or an error
};

std::string to_int(const std::string& v, int& out, long lo, long hi) {
    char* end = nullptr;
    errno = 0;
    long x = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end || errno || x < lo || x > hi)
        return "expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
    out = static_cast<int>(x);
    return "";
}

std::string to_size(const std::string& v, std::size_t& out) {
    int x = 0;
    auto e = to_int(v, x, 0, 1 << 24);
    if (e.empty()) out = static_cast<std::size_t>(x);
    return e;
}

std::string to_double(const std::string& v, double& out, double lo, double hi) {
    char* end = nullptr;
    errno = 0;
    double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || errno || !std::isfinite(x) || x < lo || x > hi) {
        std::ostringstream os;
        os << "expected a number in " << lo << ".." << hi;
        return os.str();
    }
    out = x;
    return "";
}

std::string to_auth(const std::string& v, AuthMode& out) {
    if (v == "auto") out = AuthMode::Auto;
    else if (v == "plain") out = AuthMode::Plain;
    else if (v == "scram" || v == "scram-sha-1") out = AuthMode::Scram;
    else if (v == "anonymous") out = AuthMode::Anonymous;
    else if (v == "none") out = AuthMode::None;
    else return "expected auto, plain, scram, anonymous or none";
    return "";
}

bool to_transport(const std::string& v, TransportKind& out) {
    if (v == "tcp") out = TransportKind::Tcp;
    else if (v == "websocket" || v == "ws") out = TransportKind::WebSocket;
    else if (v == "bosh") out = TransportKind::Bosh;
    else return false;
    return true;
}

std::string to_path(const std::string& v, std::string& out) {
    if (v.empty() || v.front() != '/' || v.find_first_of(" \t\r\n") != std::string::npos)
        return "expected a path starting with /";
    out = v;
    return "";
}

std::vector<std::string> split_list(const std::string& v);

// websocket=90,bosh=10: HTTP transports only (they share --server); weights 0..10000, some > 0.
std::string to_mix(const std::string& v, std::vector<std::pair<TransportKind, int>>& out) {
    out.clear();
    int total = 0;
    for (const std::string& item : split_list(v)) {
        auto eq = item.find('=');
        TransportKind k;
        int w = 0;
        if (eq == std::string::npos || !to_transport(item.substr(0, eq), k) ||
            !to_int(item.substr(eq + 1), w, 0, 10000).empty())
            return "expected TRANSPORT=WEIGHT[,...], e.g. websocket=90,bosh=10 (weights 0..10000)";
        if (k == TransportKind::Tcp)
            return "tcp cannot be mixed with websocket/bosh (they share --server, an HTTP port)";
        for (const auto& [have, _] : out)
            if (have == k) return std::string("transport ") + transport_name(k) + " given twice";
        out.emplace_back(k, w);
        total += w;
    }
    if (total <= 0) return "no transport with a weight above 0";
    return "";
}

std::vector<std::string> split_list(const std::string& v) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i <= v.size()) {
        std::size_t c = v.find(',', i);
        if (c == std::string::npos) c = v.size();
        if (c > i) out.push_back(v.substr(i, c - i));
        i = c + 1;
    }
    return out;
}

#define STR(field) [](Options& o, const std::string& v) { o.field = v; return std::string(); }
#define INT(field, lo, hi) [](Options& o, const std::string& v) { return to_int(v, o.field, lo, hi); }
#define DBL(field, lo, hi) [](Options& o, const std::string& v) { return to_double(v, o.field, lo, hi); }
#define SIZE(field) [](Options& o, const std::string& v) { return to_size(v, o.field); }
#define FLAG(field) [](Options& o, const std::string&) { o.field = true; return std::string(); }

const std::vector<Spec>& specs() {
    static const std::vector<Spec> s = {
        {"server", "HOST:PORT", "where clients connect (default 127.0.0.1:5222; jitsi-web :5280)",
         [](Options& o, const std::string& v) {
             std::string h;
             int p;
             if (!split_host_port(v, h, p)) return std::string("expected HOST:PORT");
             o.server = v;
             o.server_given = true;
             return std::string();
         }},
        {"brewery-server", "HOST:PORT", "where bridges and focus connect (default: --server; jitsi-web :5222)",
         [](Options& o, const std::string& v) {
             std::string h;
             int p;
             if (!split_host_port(v, h, p)) return std::string("expected HOST:PORT");
             o.brewery_server = v;
             return std::string();
         }},
        {"source", "ADDR[,ADDR...]", "local addresses to bind, round robin (more ephemeral ports)",
         [](Options& o, const std::string& v) {
             o.sources = split_list(v);
             return o.sources.empty() ? std::string("empty list") : std::string();
         }},
        {"starttls", nullptr, "negotiate STARTTLS (OpenSSL, certificate not verified)", FLAG(starttls)},
        {"tls", nullptr, "websocket/bosh: TLS on every connection (wss://, https://; not verified)", FLAG(tls)},
        {"transport", "tcp|websocket|bosh", "participants' and sessions' transport (default tcp)",
         [](Options& o, const std::string& v) {
             o.transport_given = true;
             return to_transport(v, o.transport) ? std::string() : std::string("expected tcp, websocket or bosh");
         }},
        {"transport-mix", "T=W[,T=W...]", "spread participants/sessions over websocket and bosh by weight",
         [](Options& o, const std::string& v) { return to_mix(v, o.transport_mix); }},
        {"ws-path", "PATH", "websocket: request path (default /xmpp-websocket)",
         [](Options& o, const std::string& v) { return to_path(v, o.ws_path); }},
        {"bosh-path", "PATH", "bosh: request path (default /http-bind)",
         [](Options& o, const std::string& v) { return to_path(v, o.bosh_path); }},
        {"bosh-wait", "S", "bosh: wait='' of the session request, seconds (default 60)", INT(bosh_wait, 1, 3600)},
        {"http-host", "HOST", "websocket/bosh: Host header (default: the client's domain)", STR(http_host)},
        {"ws-host", "HOST", "the same as --http-host", STR(http_host)},
        {"room-param", "NAME", "websocket/bosh: query parameter carrying the room (default room; empty: none)",
         STR(room_param)},
        {"ws-room-param", "NAME", "the same as --room-param", STR(room_param)},
        {"domain", "D[,D...]", "client domains; rooms are spread over them (default meet.test)",
         [](Options& o, const std::string& v) {
             o.domains = split_list(v);
             return o.domains.empty() ? std::string("empty list") : std::string();
         }},
        {"muc", "TEMPLATE", "MUC service of a domain (default conference.{domain})", STR(muc)},
        {"user", "TEMPLATE", "account name, {i} = client number; empty: SASL ANONYMOUS", STR(user)},
        {"password", "P", "password of --user", STR(password)},
        {"auth", "MODE", "auto|plain|scram|anonymous|none (none: stream only, no login)",
         [](Options& o, const std::string& v) { return to_auth(v, o.auth); }},
        {"concurrency", "N", "connections being set up at once (default 100)", INT(concurrency, 1, 1000000)},
        {"connect-rate", "R", "new connections per second, 0 = unlimited (default 0)", DBL(connect_rate, 0, 1e7)},
        {"room-prefix", "P", "room name prefix (default: random per run)", STR(room_prefix)},
        {"rooms", "R", "join-storm: rooms (default 1)", INT(rooms, 1, 1000000)},
        {"room-size", "M", "participants per room (default 10)", INT(room_size, 1, 1000000)},
        {"stay", "S", "join-storm: seconds in the room after the storm (default 5)", DBL(stay, 0, 86400)},
        {"messages", "N", "join-storm: groupchat messages per participant (default 2)", INT(messages, 0, 100000)},
        {"presence-bytes", "B", "size of a participant's presence (default 1024)", SIZE(presence_bytes)},
        {"join-spread", "S", "spread the joins over S seconds (default 0: all at once)", DBL(join_spread, 0, 3600)},
        {"bridges", "K", "brewery: bridges in the brewery room (default 10)", INT(bridges, 0, 1000000)},
        {"interval", "S", "brewery: seconds between a bridge's stats presences (default 5)", DBL(interval, 0.001, 3600)},
        {"stats-bytes", "B", "brewery: size of a stats presence (default 1500)", SIZE(stats_bytes)},
        {"duration", "S", "brewery/steady/churn: seconds of the measured phase (default 30)", DBL(duration, 0, 86400)},
        {"brewery-domain", "D", "domain of bridges and focus (default auth.meet.test)", STR(brewery_domain)},
        {"brewery-muc", "TEMPLATE", "brewery MUC service (default internal.{domain})", STR(brewery_muc)},
        {"brewery-room", "NAME", "brewery room (default JvbBrewery)", STR(brewery_room)},
        {"bridge-user", "TEMPLATE", "bridge account, {i} = bridge number (default jvb)", STR(bridge_user)},
        {"bridge-password", "P", "password of the bridge account(s)", STR(bridge_password)},
        {"focus-user", "USER", "focus account (default focus)", STR(focus_user)},
        {"focus-password", "P", "password of the focus account", STR(focus_password)},
        {"brewery-auth", "MODE", "auth mode of bridges and focus (default auto)",
         [](Options& o, const std::string& v) { return to_auth(v, o.brewery_auth); }},
        {"clients", "N", "steady/churn: sessions (default 100)", INT(clients, 1, 10000000)},
        {"rate", "R", "steady: messages per second in total, 0 = idle sessions (default 100)", DBL(rate, 0, 1e7)},
        {"warmup", "S", "steady: seconds sent but not measured (default 1)", DBL(warmup, 0, 3600)},
        {"target", "self|room", "steady: messages to one's own JID or groupchat (default self)",
         [](Options& o, const std::string& v) {
             if (v != "self" && v != "room") return std::string("expected self or room");
             o.to_room = v == "room";
             return std::string();
         }},
        {"connect-timeout", "S", "TCP connect timeout (default 10)", DBL(connect_timeout, 0.01, 3600)},
        {"login-timeout", "S", "connect to bound resource (default 30)", DBL(login_timeout, 0.01, 3600)},
        {"join-timeout", "S", "join presence to status 110 (default 30)", DBL(join_timeout, 0.01, 3600)},
        {"message-timeout", "S", "message to its echo (default 10)", DBL(message_timeout, 0.01, 3600)},
        {"max-time", "S", "hard limit on the whole run (default 900)", DBL(max_time, 1, 864000)},
        {"json", "FILE", "write the report as JSON", STR(json_path)},
        {"watch", "NAME=PID", "sample CPU and memory of a process (repeatable)",
         [](Options& o, const std::string& v) {
             auto eq = v.find('=');
             int pid = 0;
             if (eq == std::string::npos || eq == 0 || !to_int(v.substr(eq + 1), pid, 1, 1 << 30).empty())
                 return std::string("expected NAME=PID");
             o.watch.emplace_back(v.substr(0, eq), pid);
             return std::string();
         }},
        {"csv", "FILE", "write the --watch samples as CSV", STR(csv_path)},
        {"svg", "FILE", "write a chart of CPU per watched process over time", STR(svg_path)},
        {"sample-interval", "S", "seconds between /proc samples (default 0.2)", DBL(sample_interval, 0.01, 60)},
        {"label", "TEXT", "free text copied into the report", STR(label)},
        {"seed", "N", "random seed (default: from the clock)",
         [](Options& o, const std::string& v) {
             char* end = nullptr;
             o.seed = std::strtoull(v.c_str(), &end, 10);
             return (v.empty() || *end) ? std::string("expected a number") : std::string();
         }},
        {"strict", nullptr, "exit with status 3 if any error was counted", FLAG(strict)},
        {"quiet", nullptr, "no progress lines on stderr", FLAG(quiet)},
    };
    return s;
}

#undef STR
#undef INT
#undef DBL
#undef SIZE
#undef FLAG

const std::set<std::string> kScenarios = {"join-storm", "brewery", "jitsi", "jitsi-web", "steady", "churn"};
constexpr const char* kScenarioList = "join-storm, brewery, jitsi, jitsi-web, steady, churn";

}  // namespace

const char* transport_name(TransportKind t) {
    switch (t) {
        case TransportKind::Tcp: return "tcp";
        case TransportKind::WebSocket: return "websocket";
        case TransportKind::Bosh: return "bosh";
    }
    return "?";
}

std::vector<TransportKind> transport_cycle(const Options& o) {
    if (o.transport_mix.empty()) return {o.transport};
    int g = 0;
    for (const auto& kw : o.transport_mix) g = std::gcd(g, kw.second);
    std::vector<int> w;
    int total = 0;
    for (const auto& kw : o.transport_mix) {
        w.push_back(kw.second / g);
        total += w.back();
    }
    std::vector<int> cur(w.size(), 0);
    std::vector<TransportKind> cycle;
    cycle.reserve(static_cast<std::size_t>(total));
    for (int step = 0; step < total; ++step) {
        std::size_t best = 0;
        for (std::size_t i = 0; i < w.size(); ++i) {
            cur[i] += w[i];
            if (cur[i] > cur[best]) best = i;
        }
        cur[best] -= total;
        cycle.push_back(o.transport_mix[best].first);
    }
    return cycle;
}

std::string transport_setting(const Options& o) {
    if (o.transport_mix.empty()) return transport_name(o.transport);
    std::string s;
    for (const auto& [k, w] : o.transport_mix)
        s += (s.empty() ? "" : ",") + std::string(transport_name(k)) + "=" + std::to_string(w);
    return s;
}

bool http_clients(const Options& o) {
    return !o.transport_mix.empty() || o.transport != TransportKind::Tcp;
}

const char* auth_mode_name(AuthMode m) {
    switch (m) {
        case AuthMode::Auto: return "auto";
        case AuthMode::Plain: return "plain";
        case AuthMode::Scram: return "scram";
        case AuthMode::Anonymous: return "anonymous";
        case AuthMode::None: return "none";
    }
    return "?";
}

bool split_host_port(const std::string& s, std::string& host, int& port) {
    auto c = s.rfind(':');
    if (c == std::string::npos || c == 0) return false;
    host = s.substr(0, c);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return to_int(s.substr(c + 1), port, 1, 65535).empty();
}

ParseResult parse_options(const std::vector<std::string>& args) {
    ParseResult r;
    bool positional = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-h" || a == "--help") {
            r.help = true;
            continue;
        }
        if (a == "--version") {
            r.version = true;
            continue;
        }
        if (!a.starts_with("--")) {
            bool first = !positional;
            positional = true;
            if (!first) r.errors.push_back("unexpected argument '" + a + "'");
            else if (!kScenarios.count(a))
                r.errors.push_back("unknown scenario '" + a + "' (" + kScenarioList + ")");
            else r.opts.scenario = a;
            continue;
        }
        std::string name = a.substr(2), value;
        bool has_value = false;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_value = true;
        }
        const Spec* spec = nullptr;
        for (const Spec& s : specs())
            if (name == s.name) spec = &s;
        if (!spec) {
            r.errors.push_back("unknown option --" + name);
            continue;
        }
        if (spec->arg && !has_value) {
            if (i + 1 >= args.size()) {
                r.errors.push_back("--" + name + " needs a value (" + spec->arg + ")");
                continue;
            }
            value = args[++i];
        } else if (!spec->arg && has_value) {
            r.errors.push_back("--" + name + " takes no value");
            continue;
        }
        std::string err = spec->set(r.opts, value);
        if (!err.empty()) r.errors.push_back("--" + name + " " + value + ": " + err);
    }
    if (r.help || r.version) return r;
    Options& o = r.opts;
    if (!positional) r.errors.push_back(std::string("no scenario given (") + kScenarioList + ")");
    if (o.transport_given && !o.transport_mix.empty())
        r.errors.push_back("give --transport or --transport-mix, not both");
    if (o.scenario == "jitsi-web") {
        // jitsi with Jitsi Meet's web participants: HTTP (the proxy's http listener, or
        // Prosody's http_ports) for them, c2s for the bridges and the focus.
        if (!o.server_given) o.server = "127.0.0.1:5280";
        if (o.brewery_server.empty()) o.brewery_server = "127.0.0.1:5222";
        if (!o.transport_given && o.transport_mix.empty()) o.transport = TransportKind::WebSocket;
        if (!http_clients(o))
            r.errors.push_back("jitsi-web: participants use websocket or bosh (--transport, --transport-mix)");
        if (o.domains.size() != 1) r.errors.push_back("jitsi-web: one meeting --domain");
    }
    if (http_clients(o) && o.brewery_server.empty() && (o.scenario == "brewery" || o.scenario == "jitsi"))
        r.errors.push_back("--transport websocket/bosh: bridges and the focus use TCP; give their c2s port "
                           "with --brewery-server");
    if (o.brewery_server.empty()) o.brewery_server = o.server;
    if ((o.auth == AuthMode::Plain || o.auth == AuthMode::Scram) && o.user.empty())
        r.errors.push_back("--auth plain/scram needs --user");
    if (http_clients(o) && o.starttls)
        r.errors.push_back("--starttls is for --transport tcp (websocket/bosh over TLS: --tls)");
    if (o.tls && !http_clients(o))
        r.errors.push_back("--tls is for --transport websocket/bosh or --transport-mix (tcp: --starttls)");
    return r;
}

std::string usage() {
    std::ostringstream os;
    os << "usage: xmpp-shard-loadgen SCENARIO [options]\n"
          "scenarios: join-storm | brewery | jitsi | jitsi-web | steady | churn (see loadgen/README.md)\n\n";
    for (const Spec& s : specs()) {
        std::string left = std::string("  --") + s.name + (s.arg ? std::string(" ") + s.arg : "");
        os << left;
        os << std::string(left.size() < 32 ? 32 - left.size() : 1, ' ') << s.help << "\n";
    }
    return os.str();
}

}  // namespace xs::loadgen
