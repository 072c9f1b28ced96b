#include "app/daemon.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "app/discovery.hpp"
#include "app/worker.hpp"
#include "config/discovered.hpp"
#include "config/loader.hpp"
#include "metrics/exposition.hpp"
#include "metrics/http_server.hpp"
#include "net/ip_limiter.hpp"
#include "net/listen_socket.hpp"
#include "session/snapshot.hpp"
#include "upstream/backend_state.hpp"
#include "upstream/bosh_sessions.hpp"
#include "upstream/health_checker.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

namespace xs::app {
namespace {

using util::unix_now;

bool same_check(const config::BackendConfig& a, const config::BackendConfig& b) {
    return a.address_text == b.address_text && a.check == b.check &&
           a.check_interval == b.check_interval && a.check_timeout == b.check_timeout &&
           a.rise == b.rise && a.fall == b.fall && a.probe_domain == b.probe_domain &&
           a.check_path == b.check_path;
}

struct Daemon {
    std::shared_ptr<const config::Config> base;  // as loaded: `srv` groups not expanded
    std::shared_ptr<const config::Config> cfg;   // what the workers run: groups expanded
    std::shared_ptr<const session::Snapshot> snap;  // cfg and the runtime state attached to it
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<std::shared_ptr<metrics::WorkerStats>> stats;
    upstream::BackendRegistry registry;
    std::map<std::string, std::shared_ptr<net::IpRateLimiter>> limiters;
    std::shared_ptr<upstream::BoshSessions> bosh_sessions = std::make_shared<upstream::BoshSessions>();  // across reloads
    std::map<std::string, upstream::HealthChecker*> checkers;
    metrics::DaemonCounters counters;
    std::unique_ptr<metrics::HttpServer> http;
    uv_loop_t loop{};
    std::unique_ptr<Discovery> discovery;
    uv_signal_t sigterm{}, sigint{}, sighup{};
    uv_async_t worker_exited{};
    std::atomic<unsigned> exited{0};
    bool draining = false;

    static Daemon* of(uv_handle_t* h) { return static_cast<Daemon*>(h->data); }

    // Runtime state that outlives one configuration: backend health and admission by backend
    // name, per-address rate limiters by listener name.
    std::shared_ptr<const session::Snapshot> attach(std::shared_ptr<const config::Config> c) {
        auto rt = std::make_shared<session::Runtime>();
        for (const auto& b : c->backends) rt->states.push_back(registry.get(b.name));
        rt->bosh = bosh_sessions;
        for (const auto& l : c->listeners) {
            std::shared_ptr<net::IpRateLimiter>& lim = limiters[l.name];
            if (l.per_ip_rate <= 0) lim.reset();
            else if (!lim || lim_params_changed(l)) lim = std::make_shared<net::IpRateLimiter>(l.per_ip_rate, l.per_ip_burst);
            rt->limiters.push_back(lim);
        }
        limiter_params.clear();
        for (const auto& l : c->listeners) limiter_params[l.name] = {l.per_ip_rate, l.per_ip_burst};
        return std::make_shared<const session::Snapshot>(session::Snapshot{std::move(c), std::move(rt)});
    }
    std::map<std::string, std::pair<double, unsigned>> limiter_params;
    bool lim_params_changed(const config::ListenerConfig& l) {
        auto it = limiter_params.find(l.name);
        return it == limiter_params.end() || it->second != std::make_pair(l.per_ip_rate, l.per_ip_burst);
    }

    // One checker per backend that has checks; unchanged checkers keep running (and their counts).
    void sync_checkers() {
        std::map<std::string, upstream::HealthChecker*> next;
        for (std::size_t i = 0; i < cfg->backends.size(); ++i) {
            const auto& b = cfg->backends[i];
            auto it = checkers.find(b.name);
            if (it != checkers.end() && b.check != config::CheckKind::None && same_check(it->second->config(), b)) {
                next[b.name] = it->second;
                checkers.erase(it);
                continue;
            }
            if (b.check == config::CheckKind::None) {
                snap->rt->states[i]->check_passed(0);  // unchecked backends are taken as up
                continue;
            }
            auto* c = new upstream::HealthChecker(&loop, snap->rt->states[i], b);
            c->start();
            next[b.name] = c;
        }
        for (auto& [name, c] : checkers) c->stop();
        checkers = std::move(next);
    }

    // Listener changes (names, addresses) and the worker count need a restart: the sockets
    // are open already. Everything else applies to new sessions.
    bool reload_compatible(const config::Config& next, std::string& why) const {
        if (next.listeners.size() != cfg->listeners.size()) {
            why = "the set of listeners changed (restart to apply)";
            return false;
        }
        for (std::size_t i = 0; i < next.listeners.size(); ++i) {
            if (next.listeners[i].name != cfg->listeners[i].name ||
                next.listeners[i].bind != cfg->listeners[i].bind) {
                why = "listener '" + cfg->listeners[i].name + "' changed (restart to apply)";
                return false;
            }
        }
        if (next.proxy.workers != cfg->proxy.workers) {
            why = "'workers' changed (restart to apply)";
            return false;
        }
        if (next.proxy.metrics != cfg->proxy.metrics) {
            why = "'metrics' changed (restart to apply)";
            return false;
        }
        return true;
    }

    // `b` with its groups' discovered members in place of the groups; null when that does not
    // compile (logged).
    std::shared_ptr<const config::Config> expand(const std::shared_ptr<const config::Config>& b) {
        if (!config::has_discovery(*b)) return b;
        auto e = config::expand_discovered(*b, discovery->members());
        for (const auto& note : e.notes) log::warn("discovery: ", note);
        return e.config;
    }

    void apply(std::shared_ptr<const config::Config> next) {
        cfg = std::move(next);
        snap = attach(cfg);
        sync_checkers();
        for (auto& w : workers) w->post_snapshot(snap);
    }

    // A group's members changed: new sessions see them; live ones keep their backend.
    void on_discovered() {
        if (draining) return;
        auto next = expand(base);
        if (!next) {
            log::error("discovery: the new members do not fit the routes; configuration unchanged");
            return;
        }
        apply(std::move(next));
        log::info("discovery: applied to new sessions (", cfg->backends.size(), " backends)");
    }

    // Resolves the groups once before serving, so that the first sessions find members;
    // bounded by connect_timeout (then the groups without an answer refuse until one comes).
    void discover_first() {
        if (!config::has_discovery(*base)) return;
        discovery->sync(*base);
        uv_timer_t t{};
        bool expired = false;
        uv_timer_init(&loop, &t);
        t.data = &expired;
        uv_timer_start(&t, [](uv_timer_t* h) { *static_cast<bool*>(h->data) = true; },
                       static_cast<uint64_t>(base->proxy.connect_timeout.count()), 0);
        while (!discovery->settled() && !expired) uv_run(&loop, UV_RUN_ONCE);
        uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
        uv_run(&loop, UV_RUN_NOWAIT);
        if (!discovery->settled()) log::warn("discovery: no answer within connect_timeout; resolving on");
        if (auto next = expand(base)) {
            cfg = std::move(next);
            snap = attach(cfg);
        }
    }

    void reload() {
        if (draining) return;
        log::info("SIGHUP: reloading ", cfg->path);
        auto result = config::load_config_file(cfg->path);
        std::string why;
        if (!result.errors.empty()) {
            for (const auto& e : result.errors) log::error("reload: ", e.to_string());
            why = std::to_string(result.errors.size()) + " problem(s) in the file";
        } else {
            reload_compatible(*result.config, why);  // sets why when it is not
        }
        std::shared_ptr<const config::Config> next;
        if (why.empty()) {
            discovery->sync(*result.config);
            next = expand(result.config);
            if (!next) {
                why = "the routes do not compile with the discovered backends";
                discovery->sync(*base);  // back to the groups of the running configuration
            }
        }
        if (!why.empty()) {
            counters.reloads_failure.fetch_add(1);
            log::error("reload failed: ", why, "; configuration unchanged");
            return;
        }
        base = result.config;
        apply(std::move(next));
        counters.reloads_success.fetch_add(1);
        counters.last_reload_success_seconds.store(unix_now());
        log::info("reload: applied to new sessions (", cfg->backends.size(), " backends, ",
                  cfg->routes->route_count(), " routes)");
    }

    void on_stop_signal(int signum) {
        if (!draining) {
            draining = true;
            counters.accepting.store(false);
            log::info(signum == SIGINT ? "SIGINT" : "SIGTERM", ": no longer accepting; draining");
            for (auto& w : workers) w->post_drain();
        } else {
            log::info("second stop signal: cutting every session now");
            for (auto& w : workers) w->post_cut();
        }
    }

    metrics::HttpResponse serve(const std::string& path) {
        if (path == "/metrics")
            return {200, "text/plain; version=0.0.4; charset=utf-8", metrics::render(stats, *cfg, *snap->rt, counters)};
        if (path == "/healthz")
            return counters.accepting.load() ? metrics::HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}
                                             : metrics::HttpResponse{503, "text/plain; charset=utf-8", "draining\n"};
        if (path == "/")
            return {200, "text/plain; charset=utf-8", "xmpp-shard-proxy: /metrics /healthz\n"};
        return {404, "text/plain; charset=utf-8", "not found\n"};
    }

    void close_all() {
        discovery->close();
        for (auto& [name, c] : checkers) c->stop();
        checkers.clear();
        if (http) http->close();
        uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&sighup), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&worker_exited), nullptr);
    }
};

// Raises the soft descriptor limit to the hard one and says what it allows: each session holds
// two descriptors (client and backend).
void check_fd_limit(const config::Config& cfg, unsigned workers) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    uint64_t reserve = 64 + 4 * uint64_t(workers) * cfg.listeners.size() + 2 * cfg.backends.size();
    uint64_t sessions = rl.rlim_cur > reserve ? (rl.rlim_cur - reserve) / 2 : 0;
    unsigned cap = cfg.proxy.max_connections;
    if (cap > 0 && cap > sessions) {
        log::warn("file descriptor limit ", rl.rlim_cur, " is too low for max_connections = ", cap,
                  ": at most about ", sessions, " sessions fit (2 descriptors each); raise LimitNOFILE "
                  "(systemd) or ulimit -n to at least ", 2 * uint64_t(cap) + reserve);
    } else if (sessions < 10'000) {
        log::warn("file descriptor limit ", rl.rlim_cur, " allows only about ", sessions,
                  " concurrent sessions (2 descriptors each); raise LimitNOFILE or ulimit -n for more");
    } else {
        log::info("file descriptor limit ", rl.rlim_cur, ": room for about ", sessions, " concurrent sessions");
    }
}

}  // namespace

int run_daemon(std::shared_ptr<config::Config> initial) {
    ::signal(SIGPIPE, SIG_IGN);
    unsigned n = initial->proxy.workers;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());

    // Open every socket before starting any thread, so that a bind error stops start-up.
    std::vector<std::vector<int>> fds(n);
    auto close_fds = [&] {
        for (auto& v : fds)
            for (int fd : v) ::close(fd);
    };
    for (const auto& l : initial->listeners) {
        config::SocketAddress addr = l.address;
        for (unsigned w = 0; w < n; ++w) {
            std::string err;
            int fd = net::open_listen_socket(addr, initial->proxy.backlog, &err);
            if (fd < 0) {
                log::error("listener ", l.name, ": ", err);
                close_fds();
                return 1;
            }
            if (w == 0) addr = net::bound_address(fd);  // port 0: the others share the chosen port
            fds[w].push_back(fd);
        }
        log::info("listener ", l.name, " on ", addr.to_string(), " (", n, " worker socket(s))");
    }

    check_fd_limit(*initial, n);
    auto connections = std::make_shared<std::atomic<int64_t>>(0);
    Daemon d;
    d.base = initial;
    d.cfg = initial;
    d.snap = d.attach(initial);
    d.counters.start_seconds = unix_now();
    d.counters.last_reload_success_seconds.store(d.counters.start_seconds);
    uv_loop_init(&d.loop);
    d.discovery = std::make_unique<Discovery>(&d.loop, [&d] { d.on_discovered(); });
    d.counters.discovery = [&d] { return d.discovery->status(); };
    uv_async_init(&d.loop, &d.worker_exited, [](uv_async_t* a) {
        Daemon* d = Daemon::of(reinterpret_cast<uv_handle_t*>(a));
        if (d->exited.load() == d->workers.size()) d->close_all();
    });
    d.worker_exited.data = &d;
    if (!d.cfg->proxy.metrics.empty()) {
        d.http = std::make_unique<metrics::HttpServer>(&d.loop, [&d](const std::string& p) { return d.serve(p); });
        std::string err;
        if (d.http->listen(d.cfg->metrics_address, &err)) {
            log::info("metrics on http://", d.http->bound().to_string(), "/metrics");
        } else {
            // The data plane matters more than the metrics: keep serving XMPP, say so loudly.
            log::error("metrics: ", err, "; /metrics and /healthz are NOT served");
            d.http.reset();
        }
    }
    d.discover_first();
    for (unsigned w = 0; w < n; ++w) {
        d.stats.push_back(std::make_shared<metrics::WorkerStats>());
        d.workers.push_back(std::make_unique<Worker>(w, d.snap, fds[w], d.stats.back(), connections, [&d] {
            d.exited.fetch_add(1);
            uv_async_send(&d.worker_exited);
        }));
    }
    uv_signal_t* sigs[] = {&d.sigterm, &d.sigint, &d.sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; ++i) {
        uv_signal_init(&d.loop, sigs[i]);
        sigs[i]->data = &d;
        uv_signal_start(sigs[i], [](uv_signal_t* s, int signum) {
            Daemon* d = Daemon::of(reinterpret_cast<uv_handle_t*>(s));
            if (signum == SIGHUP) d->reload();
            else d->on_stop_signal(signum);
        }, nums[i]);
    }
    d.sync_checkers();
    for (auto& w : d.workers) w->start();
    log::info("xmpp-shard-proxy ready: ", n, " worker(s), ", d.cfg->backends.size(), " backend(s), ",
              d.cfg->routes->route_count(), " route(s)");

    uv_run(&d.loop, UV_RUN_DEFAULT);
    for (auto& w : d.workers) w->join();
    d.workers.clear();
    uv_loop_close(&d.loop);
    log::info("stopped");
    return 0;
}

}  // namespace xs::app
