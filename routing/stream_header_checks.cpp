// The sniffer's checks that run when a piece of the header is complete: XML declaration
// pseudo-attributes, names, references, and the namespace rules applied at the root's '>'.
#include "routing/stream_header_sniffer.hpp"
#include "routing/xml_chars.hpp"

namespace xs::routing {

using namespace xml;

void StreamHeaderSniffer::finish_decl_name() {
    if (name_ == "version" && decl_stage_ == 0) {
        decl_stage_ = 1;
    } else if (name_ == "encoding" && decl_stage_ == 1) {
        decl_stage_ = 2;
    } else if (name_ == "standalone" && (decl_stage_ == 1 || decl_stage_ == 2)) {
        decl_stage_ = 3;
    } else {
        not_well_formed("malformed XML declaration: unexpected '" + name_ + "'");
    }
}

void StreamHeaderSniffer::finish_decl_value() {
    const std::string& v = value_;
    if (decl_stage_ == 1) {
        bool ok = v.size() > 2 && v[0] == '1' && v[1] == '.';
        for (std::size_t i = 2; ok && i < v.size(); ++i) ok = is_digit((unsigned char)v[i]);
        if (!ok) not_well_formed("malformed XML declaration: version '" + v + "'");
    } else if (decl_stage_ == 2) {
        bool ok = !v.empty() && is_alpha((unsigned char)v[0]);
        for (std::size_t i = 1; ok && i < v.size(); ++i) {
            auto c = (unsigned char)v[i];
            ok = is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-';
        }
        if (!ok) return not_well_formed("malformed XML declaration: encoding '" + v + "'");
        if (!iequals_ascii(v, "utf-8"))
            reject(StreamCondition::UnsupportedEncoding,
                   "encoding '" + v + "' declared: only UTF-8 is supported");
    } else if (v != "yes" && v != "no") {
        not_well_formed("malformed XML declaration: standalone '" + v + "'");
    }
}

void StreamHeaderSniffer::finish_elem_name() {
    auto q = split_qname(name_);
    if (!q) return not_well_formed("invalid element name '" + name_ + "'");
    if (q->local != "stream")
        return reject(StreamCondition::InvalidNamespace,
                      "root element '" + name_ + "' is not a stream");
    if (q->prefix == "xmlns") return not_well_formed("element name with the reserved prefix xmlns");
    header_.prefix = std::string(q->prefix);
}

void StreamHeaderSniffer::finish_attr_name() {
    if (!split_qname(name_)) return not_well_formed("invalid attribute name '" + name_ + "'");
    for (const auto& a : attrs_)
        if (a.first == name_) return not_well_formed("duplicate attribute '" + name_ + "'");
}

void StreamHeaderSniffer::finish_entity() {
    static constexpr std::pair<std::string_view, char> kPredefined[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    for (auto [n, ch] : kPredefined) {
        if (entity_ == n) {
            value_ += ch;
            return;
        }
    }
    std::string_view e = entity_;
    if (e.size() < 2 || e[0] != '#') return not_well_formed("undefined entity '&" + entity_ + ";'");
    bool hex = e[1] == 'x';
    std::string_view digits = e.substr(hex ? 2 : 1);
    std::uint32_t cp = 0;
    bool ok = !digits.empty();
    for (char d : digits) {
        auto c = (unsigned char)d;
        if (!(hex ? is_hex(c) : is_digit(c))) {
            ok = false;
            break;
        }
        std::uint32_t v = is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
        cp = cp * (hex ? 16 : 10) + v;
        if (cp > 0x10FFFF) {
            ok = false;
            break;
        }
    }
    if (!ok || !is_xml_char(cp))
        return not_well_formed("invalid character reference '&" + entity_ + ";'");
    append_utf8(value_, cp);
}

void StreamHeaderSniffer::finish_tag(bool self_closing) {
    // Namespace declarations on the root (Namespaces in XML 1.0 constraints).
    const std::string* default_ns = nullptr;
    std::vector<QName> names;
    names.reserve(attrs_.size());
    for (const auto& [n, v] : attrs_) {
        QName q = *split_qname(n);  // validated when the name ended
        names.push_back(q);
        if (q.prefix.empty() && q.local == "xmlns") {
            if (v == kXmlNs || v == kXmlnsNs)
                return not_well_formed("reserved namespace name as the default namespace");
            default_ns = &v;
        } else if (q.prefix == "xmlns") {
            if (q.local == "xmlns") return not_well_formed("the prefix xmlns cannot be declared");
            if ((q.local == "xml") != (v == kXmlNs) || v == kXmlnsNs)
                return not_well_formed("reserved prefix or namespace misused in '" + n + "'");
            if (v.empty()) return not_well_formed("empty namespace name in '" + n + "'");
        }
    }
    auto resolve = [&](std::string_view prefix) -> std::optional<std::string_view> {
        if (prefix == "xml") return kXmlNs;
        for (std::size_t i = 0; i < attrs_.size(); ++i)
            if (names[i].prefix == "xmlns" && names[i].local == prefix) return attrs_[i].second;
        return std::nullopt;
    };
    // Prefixed attributes: bound, and no two with the same expanded name.
    std::vector<std::string_view> ns(attrs_.size());
    for (std::size_t i = 0; i < attrs_.size(); ++i) {
        if (names[i].prefix.empty() || names[i].prefix == "xmlns") continue;
        auto r = resolve(names[i].prefix);
        if (!r) return not_well_formed("unbound prefix in attribute '" + attrs_[i].first + "'");
        ns[i] = *r;
        for (std::size_t j = 0; j < i; ++j) {
            if (!ns[j].empty() && ns[j] == ns[i] && names[j].local == names[i].local)
                return not_well_formed("attributes '" + attrs_[j].first + "' and '" +
                                       attrs_[i].first + "' have the same expanded name");
        }
    }
    // The root's namespace.
    std::string_view root_ns;
    if (header_.prefix.empty()) {
        if (!default_ns)
            return reject(StreamCondition::InvalidNamespace,
                          "root 'stream' in no namespace (no xmlns attribute)");
        root_ns = *default_ns;
    } else {
        auto r = resolve(header_.prefix);
        if (!r) return not_well_formed("unbound prefix '" + header_.prefix + "' on the root");
        root_ns = *r;
    }
    if (root_ns != kStreamsNs)
        return reject(StreamCondition::InvalidNamespace,
                      "root namespace '" + std::string(root_ns) + "' is not " +
                          std::string(kStreamsNs));
    if (self_closing)
        return reject(StreamCondition::InvalidXml,
                      "self-closing root <stream/>: an empty stream carries no stanzas");

    if (!header_.prefix.empty() && default_ns) header_.content_ns = *default_ns;
    for (std::size_t i = 0; i < attrs_.size(); ++i) {
        if (!names[i].prefix.empty()) continue;
        if (names[i].local == "to") {
            header_.has_to = true;
            header_.to = attrs_[i].second;
        } else if (names[i].local == "version") {
            header_.version = attrs_[i].second;
        }
    }
    header_.consumed = seen_;
    status_ = SniffStatus::Done;
    name_ = {};
    value_ = {};
    attrs_ = {};
}

}  // namespace xs::routing
