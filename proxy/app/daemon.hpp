// The daemon: opens the listening sockets, runs the workers, and handles signals on the main
// thread (SIGTERM/SIGINT drain and exit 0, a second one cuts at once; SIGHUP reloads).
#pragma once
#include <memory>

#include "config/config.hpp"

namespace xs::app {

// Runs until drained. Returns the process exit code.
int run_daemon(std::shared_ptr<config::Config> cfg);

}  // namespace xs::app
