// TOML file -> validated Config. Every problem is reported, each with its position.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace xs::config {

struct ConfigError {
    std::string file;
    uint32_t line = 0;
    uint32_t column = 0;
    std::string message;
    std::string to_string() const;  // FILE:LINE:COL: message
};

struct LoadResult {
    std::shared_ptr<Config> config;  // null when errors is not empty
    std::vector<ConfigError> errors;
};

LoadResult load_config_file(const std::string& path);
// `path` names the source in error messages.
LoadResult load_config_string(std::string_view text, const std::string& path);

}  // namespace xs::config
