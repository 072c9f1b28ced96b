#include "bosh_body.hpp"

#include "http_lines.hpp"
#include "xml_chars.hpp"

namespace xs::routing {

enum class BoshBodyReader::St : std::uint8_t {
    Start,      // BOM, '<' or whitespace
    Lt,         // after '<': '?' (declaration), '!' or the element name
    DeclTarget, // after '<?': "xml" then whitespace, else a processing instruction
    Decl,       // inside <?xml ... up to '?'
    DeclQ,      // after '?' inside the declaration
    Misc,       // whitespace before the root
    Name,       // element name
    InTag,      // whitespace / attribute name start / '>' / '/'
    AttrName,
    AfterName,  // whitespace before '='
    Eq,         // after '=': whitespace or quote
    Value,
    AfterValue, // after a value's closing quote: whitespace, '>' or '/'
    Slash,      // after '/', expecting '>'
};

BoshBodyReader::BoshBodyReader(std::size_t max_bytes) : max_(max_bytes ? max_bytes : 1) {}

void BoshBodyReader::reject(std::string why) {
    status_ = BoshStatus::Reject;
    detail_ = std::move(why) + " (at byte " + std::to_string(seen_) + ")";
}

BoshStatus BoshBodyReader::feed(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size() && status_ == BoshStatus::NeedMore; ++i) {
        ++seen_;
        step(static_cast<unsigned char>(bytes[i]));
        if (status_ == BoshStatus::NeedMore && seen_ >= max_)
            reject("no complete <body> start tag within " + std::to_string(max_) + " bytes");
    }
    return status_;
}

void BoshBodyReader::step(unsigned char c) {
    using xml::is_ws;
    static constexpr const char* kPi = "processing instruction other than a leading XML declaration";
    static constexpr unsigned char kBom[] = {0xEF, 0xBB, 0xBF};
    auto name_char = [](unsigned char ch) { return xml::is_name_char(ch) || ch >= 0x80; };
    switch (st_) {
    case St::Start:
        if (seen_ <= 3 && std::size_t{match_} + 1 == seen_ && c == kBom[match_]) {
            ++match_;
            return;
        }
        if (match_ != 0 && match_ != 3) return reject("truncated byte order mark");
        if (c == '<') { st_ = St::Lt; return; }
        if (is_ws(c)) { st_ = St::Misc; return; }
        return reject("not XML: " + xml::describe(c));
    case St::Misc:
        if (is_ws(c)) return;
        if (c == '<') { st_ = St::Lt; match_ = 4; return; }
        return reject("text before the root element: " + xml::describe(c));
    case St::Lt:
        if (c == '?') {
            if (match_ == 4 || seen_ > std::size_t{match_} + 2) return reject(kPi);
            st_ = St::DeclTarget;
            decl_ = 0;
            return;
        }
        if (c == '!') return reject("'<!' (comment, DOCTYPE or CDATA) before the root");
        if (!(xml::is_name_start(c) || c >= 0x80)) return reject("bad element name start " + xml::describe(c));
        elem_.push_back(static_cast<char>(c));
        st_ = St::Name;
        return;
    case St::DeclTarget:
        // Only "<?xml" and whitespace opens the declaration: "<?xm ...?>" or "<?xml-x ...?>" is
        // a processing instruction (whose content may hold '<').
        if (decl_ < 3 ? c != static_cast<unsigned char>("xml"[decl_]) : !is_ws(c)) return reject(kPi);
        if (++decl_ == 4) st_ = St::Decl;
        return;
    case St::Decl:
        if (c == '?') st_ = St::DeclQ;
        else if (c == '<') return reject("'<' in the XML declaration");
        return;
    case St::DeclQ:
        if (c == '>') { st_ = St::Misc; match_ = 4; return; }
        if (c != '?') st_ = St::Decl;
        return;
    case St::Name:
        if (name_char(c)) { elem_.push_back(static_cast<char>(c)); return; }
        st_ = St::InTag;
        if (c != '>' && c != '/' && !is_ws(c)) return reject("bad byte in element name: " + xml::describe(c));
        [[fallthrough]];
    case St::AfterValue:
        if (st_ == St::AfterValue) {
            if (c != '>' && c != '/' && !is_ws(c)) return reject("whitespace expected between attributes");
            st_ = St::InTag;
        }
        [[fallthrough]];
    case St::InTag:
        if (is_ws(c)) return;
        if (c == '>') return end_tag();
        if (c == '/') { st_ = St::Slash; return; }
        if (!(xml::is_name_start(c) || c >= 0x80))
            return reject("bad attribute name start " + xml::describe(c));
        name_.assign(1, static_cast<char>(c));
        st_ = St::AttrName;
        return;
    case St::AttrName:
        if (name_char(c)) { name_.push_back(static_cast<char>(c)); return; }
        if (c == '=') { st_ = St::Eq; return; }
        if (is_ws(c)) { st_ = St::AfterName; return; }
        return reject("bad byte in attribute name: " + xml::describe(c));
    case St::AfterName:
        if (is_ws(c)) return;
        if (c == '=') { st_ = St::Eq; return; }
        return reject("'=' expected after attribute name");
    case St::Eq:
        if (is_ws(c)) return;
        if (c == '\'' || c == '"') { quote_ = static_cast<char>(c); value_.clear(); st_ = St::Value; return; }
        return reject("quote expected after '='");
    case St::Value:
        if (in_entity_) {
            if (c != ';') {
                if (entity_.size() >= 10) return reject("reference too long");
                entity_.push_back(static_cast<char>(c));
                return;
            }
            in_entity_ = false;
            std::uint32_t cp = 0;
            if (entity_ == "lt") cp = '<';
            else if (entity_ == "gt") cp = '>';
            else if (entity_ == "amp") cp = '&';
            else if (entity_ == "quot") cp = '"';
            else if (entity_ == "apos") cp = '\'';
            else if (entity_.size() >= 2 && entity_[0] == '#') {
                const bool hex = entity_[1] == 'x';
                const std::string_view digits = std::string_view(entity_).substr(hex ? 2 : 1);
                if (digits.empty()) return reject("empty character reference");
                for (char d : digits) {
                    const unsigned char u = static_cast<unsigned char>(d);
                    if (hex ? !xml::is_hex(u) : !xml::is_digit(u)) return reject("bad character reference");
                    const std::uint32_t v = xml::is_digit(u) ? u - '0' : (u | 0x20) - 'a' + 10;
                    cp = cp * (hex ? 16 : 10) + v;
                    if (cp > 0x10FFFF) return reject("character reference out of range");
                }
                if (!xml::is_xml_char(cp)) return reject("character reference to a non-XML character");
            } else {
                return reject("undefined entity '&" + http::printable(entity_) + ";'");
            }
            xml::append_utf8(value_, cp);
            return;
        }
        if (c == static_cast<unsigned char>(quote_)) { st_ = St::AfterValue; end_attr(); return; }
        if (c == '<') return reject("'<' in an attribute value");
        if (c == '&') { in_entity_ = true; entity_.clear(); return; }
        if (c == '\t' || c == '\r' || c == '\n') c = ' ';
        else if (c < 0x20) return reject("control character in an attribute value");
        value_.push_back(static_cast<char>(c));
        return;
    case St::Slash:
        if (c == '>') return end_tag();
        return reject("'>' expected after '/'");
    }
}

void BoshBodyReader::end_attr() {
    const std::string key = "\n" + name_ + "\n";
    if (names_.find(key) != std::string::npos) return reject("duplicate attribute '" + http::printable(name_) + "'");
    names_ += key;
    const std::size_t colon = elem_.find(':');
    const std::string prefix = colon == std::string::npos ? std::string() : elem_.substr(0, colon);
    auto set = [&](bool& has, std::string& dst) {
        for (unsigned char ch : value_)
            if (ch < 0x20 || ch == 0x7F) return reject("control character in '" + name_ + "'");
        has = true;
        dst = value_;
    };
    if (name_ == "to") set(body_.has_to, body_.to);
    else if (name_ == "sid") set(body_.has_sid, body_.sid);
    else if (name_ == "rid") set(body_.has_rid, body_.rid);
    else if (name_ == "xmlns") { has_ns_default_ = true; ns_default_ = value_; }
    else if (!prefix.empty() && name_ == "xmlns:" + prefix) { has_ns_prefixed_ = true; ns_prefixed_ = value_; }
    name_.clear();
}

void BoshBodyReader::end_tag() {
    const std::size_t colon = elem_.find(':');
    const std::string local = colon == std::string::npos ? elem_ : elem_.substr(colon + 1);
    if (local != "body") return reject("root element is not <body>: '" + http::printable(elem_) + "'");
    const bool prefixed = colon != std::string::npos;
    const bool bound = prefixed ? has_ns_prefixed_ : has_ns_default_;
    const std::string& ns = prefixed ? ns_prefixed_ : ns_default_;
    if (!bound || ns != kHttpBindNs) return reject("<body> not in the namespace " + std::string(kHttpBindNs));
    status_ = BoshStatus::Done;
    body_.consumed = seen_;
}

std::optional<std::string> bosh_response_sid(std::string_view body) {
    BoshBodyReader r(body.size() + 1);
    if (r.feed(body) != BoshStatus::Done || !r.body().has_sid) return std::nullopt;
    return r.body().sid;
}

}  // namespace xs::routing
