// RFC 6120 section 4.9.3 stream error conditions that the proxy can send.
#pragma once
#include <string_view>

namespace xs::routing {

enum class StreamCondition {
    BadFormat,
    ConnectionTimeout,
    HostUnknown,
    InvalidNamespace,
    InvalidXml,
    NotWellFormed,
    PolicyViolation,
    RemoteConnectionFailed,
    RestrictedXml,
    SeeOtherHost,
    SystemShutdown,
    UnsupportedEncoding,
    UnsupportedVersion,
};

// The element name of the condition, e.g. "host-unknown". Also the metric label.
std::string_view to_string(StreamCondition c);

}  // namespace xs::routing
