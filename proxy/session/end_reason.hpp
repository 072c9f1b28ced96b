// Why a session ended: one typed reason per session, also the metric label.
#pragma once
#include <cstddef>
#include <string_view>

namespace xs::session {

enum class EndReason {
    ClientClosed,
    BackendClosed,
    ClientError,
    BackendError,
    Refused,               // a stream error was sent (the condition is counted apart)
    BackendConnectFailed,  // every candidate failed: remote-connection-failed was sent
    NotXmpp,               // e.g. a TLS ClientHello on a plaintext listener: closed without XML
    TlsFailed,             // terminate: the TLS handshake or stream failed
    TimedOut,              // a side did not finish within close_linger
    Drained,               // cut at the end of drain_timeout
};
inline constexpr std::size_t kEndReasonCount = 10;
std::string_view to_string(EndReason r);

}  // namespace xs::session
