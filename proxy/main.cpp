// xmpp-shard-proxy: one listener, N Prosody backends, routed by the stream header's 'to'.
#include <cstdio>
#include <cstring>
#include <string>

#include "app/daemon.hpp"
#include "config/loader.hpp"
#include "config/reference.hpp"
#include "util/log.hpp"

#ifndef XS_VERSION
#define XS_VERSION "0.0.0"
#endif

namespace {

const char* kUsage =
    "usage: xmpp-shard-proxy --config FILE [--check] [--log-level LEVEL]\n"
    "       xmpp-shard-proxy --print-config-reference | --version | --help\n"
    "\n"
    "  --config FILE      the TOML configuration (see the README)\n"
    "  --check            validate FILE only: exit 0 if valid, else print every problem\n"
    "                     as FILE:LINE:COL: message and exit 1\n"
    "  --log-level LEVEL  debug, info (default), warn or error\n"
    "  --print-config-reference\n"
    "                     print every configuration key (type, default, range, help) as\n"
    "                     Markdown and exit\n"
    "\n"
    "Signals: SIGHUP reloads the configuration for new sessions; SIGTERM/SIGINT stop\n"
    "accepting and let live sessions finish up to drain_timeout (a second signal cuts them).\n";

}  // namespace

int main(int argc, char** argv) {
    std::string config_path;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char* flag) -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "xmpp-shard-proxy: %s needs a value\n%s", flag, kUsage);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--config" || a == "-c") config_path = value("--config");
        else if (a.rfind("--config=", 0) == 0) config_path = a.substr(9);
        else if (a == "--check") check = true;
        else if (a == "--log-level") {
            xs::log::Level l;
            const char* v = value("--log-level");
            if (!xs::log::parse_level(v, l)) {
                std::fprintf(stderr, "xmpp-shard-proxy: unknown log level '%s'\n", v);
                return 2;
            }
            xs::log::set_level(l);
        } else if (a == "--print-config-reference") {
            std::fputs(xs::config::render_reference_markdown().c_str(), stdout);
            return std::fflush(stdout) == 0 && !std::ferror(stdout) ? 0 : 1;
        } else if (a == "--version" || a == "-V") {
            std::printf("xmpp-shard-proxy %s\n", XS_VERSION);
            return 0;
        } else if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else {
            std::fprintf(stderr, "xmpp-shard-proxy: unknown argument '%s'\n%s", a.c_str(), kUsage);
            return 2;
        }
    }
    if (config_path.empty()) {
        std::fprintf(stderr, "xmpp-shard-proxy: --config FILE is required\n%s", kUsage);
        return 2;
    }
    auto result = xs::config::load_config_file(config_path);
    if (!result.errors.empty()) {
        for (const auto& e : result.errors) std::fprintf(check ? stdout : stderr, "%s\n", e.to_string().c_str());
        if (!check) std::fprintf(stderr, "xmpp-shard-proxy: %zu problem(s) in %s; not starting\n",
                                 result.errors.size(), config_path.c_str());
        return 1;
    }
    if (check) {
        std::printf("%s: ok\n", config_path.c_str());
        return 0;
    }
    return xs::app::run_daemon(result.config);
}
