#include "app/daemon.hpp"

#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <thread>
#include <vector>

#include "app/worker.hpp"
#include "config/loader.hpp"
#include "net/listen_socket.hpp"
#include "util/log.hpp"

namespace xs::app {
namespace {

struct Daemon {
    std::shared_ptr<const config::Config> cfg;
    std::vector<std::unique_ptr<Worker>> workers;
    uv_loop_t loop{};
    uv_signal_t sigterm{}, sigint{}, sighup{};
    uv_async_t worker_exited{};
    std::atomic<unsigned> exited{0};
    bool draining = false;

    static Daemon* of(uv_handle_t* h) { return static_cast<Daemon*>(h->data); }

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
        return true;
    }

    void reload() {
        if (draining) return;
        log::info("SIGHUP: reloading ", cfg->path);
        auto result = config::load_config_file(cfg->path);
        if (!result.errors.empty()) {
            for (const auto& e : result.errors) log::error("reload: ", e.to_string());
            log::error("reload failed: configuration unchanged");
            return;
        }
        std::string why;
        if (!reload_compatible(*result.config, why)) {
            log::error("reload failed: ", why, "; configuration unchanged");
            return;
        }
        cfg = result.config;
        for (auto& w : workers) w->post_config(cfg);
        log::info("reload: applied to new sessions (", cfg->backends.size(), " backends, ",
                  cfg->routes->route_count(), " routes)");
    }

    void on_stop_signal(int signum) {
        if (!draining) {
            draining = true;
            log::info(signum == SIGINT ? "SIGINT" : "SIGTERM", ": no longer accepting; draining");
            for (auto& w : workers) w->post_drain();
        } else {
            log::info("second stop signal: cutting every session now");
            for (auto& w : workers) w->post_cut();
        }
    }
};

}  // namespace

int run_daemon(std::shared_ptr<const config::Config> cfg) {
    ::signal(SIGPIPE, SIG_IGN);
    unsigned n = cfg->proxy.workers;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());

    // Open every socket before starting any thread, so that a bind error stops start-up.
    std::vector<std::vector<int>> fds(n);
    auto close_all = [&] {
        for (auto& v : fds)
            for (int fd : v) ::close(fd);
    };
    for (const auto& l : cfg->listeners) {
        config::SocketAddress addr = l.address;
        for (unsigned w = 0; w < n; ++w) {
            std::string err;
            int fd = net::open_listen_socket(addr, cfg->proxy.backlog, &err);
            if (fd < 0) {
                log::error("listener ", l.name, ": ", err);
                close_all();
                return 1;
            }
            if (w == 0) addr = net::bound_address(fd);  // port 0: the others share the chosen port
            fds[w].push_back(fd);
        }
        log::info("listener ", l.name, " on ", addr.to_string(), " (", n, " worker socket(s))");
    }

    Daemon d;
    d.cfg = cfg;
    uv_loop_init(&d.loop);
    uv_async_init(&d.loop, &d.worker_exited, [](uv_async_t* a) {
        Daemon* d = Daemon::of(reinterpret_cast<uv_handle_t*>(a));
        if (d->exited.load() < d->workers.size()) return;
        uv_close(reinterpret_cast<uv_handle_t*>(&d->sigterm), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&d->sigint), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&d->sighup), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&d->worker_exited), nullptr);
    });
    d.worker_exited.data = &d;
    for (unsigned w = 0; w < n; ++w) {
        d.workers.push_back(std::make_unique<Worker>(w, cfg, fds[w], [&d] {
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
    for (auto& w : d.workers) w->start();
    log::info("xmpp-shard-proxy ready: ", n, " worker(s), ", cfg->backends.size(), " backend(s), ",
              cfg->routes->route_count(), " route(s)");

    uv_run(&d.loop, UV_RUN_DEFAULT);
    for (auto& w : d.workers) w->join();
    d.workers.clear();
    uv_loop_close(&d.loop);
    log::info("stopped");
    return 0;
}

}  // namespace xs::app
