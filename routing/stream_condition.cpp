#include "routing/stream_condition.hpp"

namespace xs::routing {

std::string_view to_string(StreamCondition c) {
    switch (c) {
    case StreamCondition::BadFormat: return "bad-format";
    case StreamCondition::ConnectionTimeout: return "connection-timeout";
    case StreamCondition::HostUnknown: return "host-unknown";
    case StreamCondition::InvalidNamespace: return "invalid-namespace";
    case StreamCondition::InvalidXml: return "invalid-xml";
    case StreamCondition::NotWellFormed: return "not-well-formed";
    case StreamCondition::PolicyViolation: return "policy-violation";
    case StreamCondition::RemoteConnectionFailed: return "remote-connection-failed";
    case StreamCondition::RestrictedXml: return "restricted-xml";
    case StreamCondition::SeeOtherHost: return "see-other-host";
    case StreamCondition::SystemShutdown: return "system-shutdown";
    case StreamCondition::UnsupportedEncoding: return "unsupported-encoding";
    case StreamCondition::UnsupportedVersion: return "unsupported-version";
    }
    return "undefined-condition";  // not reached: every enumerator is handled above
}

}  // namespace xs::routing
