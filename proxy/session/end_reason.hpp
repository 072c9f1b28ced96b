// Why a session ended: one typed reason per session. Each carries its own name (the metric
// label and the session log's reason) and whether it is an error (logged as one, never dropped
// silently by the session log's rate limit).
#pragma once
#include <array>
#include <cstddef>
#include <string_view>

namespace xs::session {

enum class EndReason {
    ClientClosed,
    BackendClosed,
    ClientError,
    BackendError,
    Refused,               // a refusal was sent (the condition is counted apart)
    BackendConnectFailed,  // every candidate failed: remote-connection-failed was sent
    NotXmpp,               // e.g. a TLS ClientHello on a plaintext listener: closed without XML
    TlsFailed,             // terminate: the TLS handshake or stream failed
    TimedOut,              // a side did not finish within close_linger
    Drained,               // cut at the end of drain_timeout
    Idle,                  // HTTP keep-alive: no next request within keepalive_timeout (or draining)
};

struct EndReasonInfo {
    EndReason reason;
    std::string_view name;
    bool error;
};

inline constexpr std::array<EndReasonInfo, 11> kEndReasons{{
    {EndReason::ClientClosed, "client_closed", false},
    {EndReason::BackendClosed, "backend_closed", false},
    {EndReason::ClientError, "client_error", true},
    {EndReason::BackendError, "backend_error", true},
    {EndReason::Refused, "refused", true},
    {EndReason::BackendConnectFailed, "backend_connect_failed", true},
    {EndReason::NotXmpp, "not_xmpp", true},
    {EndReason::TlsFailed, "tls_failed", true},
    {EndReason::TimedOut, "timed_out", true},
    {EndReason::Drained, "drained", false},
    {EndReason::Idle, "idle", false},
}};
inline constexpr std::size_t kEndReasonCount = kEndReasons.size();

constexpr const EndReasonInfo& info(EndReason r) { return kEndReasons[static_cast<std::size_t>(r)]; }
constexpr std::string_view to_string(EndReason r) { return info(r).name; }
constexpr bool is_error(EndReason r) { return info(r).error; }

// The table is in enum order (info() indexes it).
constexpr bool end_reasons_in_order() {
    for (std::size_t i = 0; i < kEndReasons.size(); ++i)
        if (static_cast<std::size_t>(kEndReasons[i].reason) != i) return false;
    return true;
}
static_assert(end_reasons_in_order());

}  // namespace xs::session
