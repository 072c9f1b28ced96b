// xmpp-shard-loadgen: thousands of simulated XMPP clients in one process (see loadgen/README.md).
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "core/options.hpp"
#include "runner.hpp"

#ifndef XS_VERSION
#define XS_VERSION "0"
#endif

using namespace xs::loadgen;

namespace {

void raise_nofile() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

bool write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path);
    f << text;
    return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    ParseResult pr = parse_options(args);
    if (pr.help) {
        std::cout << usage();
        return 0;
    }
    if (pr.version) {
        std::cout << "xmpp-shard-loadgen " << XS_VERSION << "\n";
        return 0;
    }
    if (!pr.errors.empty()) {
        for (const auto& e : pr.errors) std::cerr << "xmpp-shard-loadgen: " << e << "\n";
        std::cerr << "try --help\n";
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    const Options& o = pr.opts;
    Runner runner(o);
    if (!runner.run()) {
        std::cerr << "xmpp-shard-loadgen: " << runner.error() << "\n";
        return 1;
    }
    Report& rep = runner.report();
    std::cout << rep.text() << std::flush;
    int rc = 0;
    if (!o.json_path.empty() && !write_file(o.json_path, rep.json())) {
        std::cerr << "xmpp-shard-loadgen: cannot write " << o.json_path << "\n";
        rc = 1;
    }
    if (!o.csv_path.empty() && !runner.watcher()->write_csv(o.csv_path)) {
        std::cerr << "xmpp-shard-loadgen: cannot write " << o.csv_path << "\n";
        rc = 1;
    }
    if (!o.svg_path.empty()) {
        std::string title = "CPU per process: " + o.scenario + (o.label.empty() ? "" : " (" + o.label + ")");
        if (!runner.watcher()->write_svg(o.svg_path, title, runner.markers())) {
            std::cerr << "xmpp-shard-loadgen: cannot write " << o.svg_path << "\n";
            rc = 1;
        }
    }
    if (rc == 0 && o.strict && rep.errors.total() > 0) rc = 3;
    return rc;
}
