#include "xml_stream.hpp"

#include <cstring>

namespace xs::loadgen::xml {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool name_char(char c) {
    return !(is_space(c) || c == '=' || c == '>' || c == '/' || c == '<' || c == '"' || c == '\'' ||
             c == '\0');
}

bool all_space(std::string_view s) {
    for (char c : s)
        if (!is_space(c)) return false;
    return true;
}

void put_utf8(unsigned long cp, std::string& out) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

bool ns_matches(const Element& e, std::string_view xmlns) {
    if (xmlns.empty()) return true;
    const std::string* v = e.attr("xmlns");
    return v && *v == xmlns;
}

const Element* find_in(const Element& e, std::string_view local, std::string_view xmlns) {
    for (const Element& c : e.children) {
        if (c.local_name() == local && ns_matches(c, xmlns)) return &c;
        if (const Element* d = find_in(c, local, xmlns)) return d;
    }
    return nullptr;
}

}  // namespace

// ---- Element ------------------------------------------------------------------------------

std::string_view Element::local_name() const {
    std::string_view n = name;
    auto colon = n.find(':');
    return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

const std::string* Element::attr(std::string_view key) const {
    for (const auto& [k, v] : attrs)
        if (k == key) return &v;
    return nullptr;
}

std::string_view Element::attr_or(std::string_view key, std::string_view dflt) const {
    const std::string* v = attr(key);
    return v ? std::string_view(*v) : dflt;
}

const Element* Element::child(std::string_view local, std::string_view xmlns) const {
    for (const Element& c : children)
        if (c.local_name() == local && ns_matches(c, xmlns)) return &c;
    return nullptr;
}

const Element* Element::find(std::string_view local, std::string_view xmlns) const {
    return find_in(*this, local, xmlns);
}

// ---- entities -----------------------------------------------------------------------------

bool decode_entities(std::string_view in, std::string& out) {
    out.reserve(out.size() + in.size());
    std::size_t i = 0;
    while (i < in.size()) {
        std::size_t amp = in.find('&', i);
        if (amp == std::string_view::npos) {
            out.append(in.substr(i));
            break;
        }
        out.append(in.substr(i, amp - i));
        std::size_t semi = in.find(';', amp);
        if (semi == std::string_view::npos || semi - amp > 12) return false;
        std::string_view ref = in.substr(amp + 1, semi - amp - 1);
        if (ref == "lt") out += '<';
        else if (ref == "gt") out += '>';
        else if (ref == "amp") out += '&';
        else if (ref == "quot") out += '"';
        else if (ref == "apos") out += '\'';
        else if (ref.size() >= 2 && ref[0] == '#') {
            bool hex = ref[1] == 'x';
            std::string_view digits = ref.substr(hex ? 2 : 1);
            if (digits.empty()) return false;
            unsigned long cp = 0;
            for (char c : digits) {
                int d;
                if (c >= '0' && c <= '9') d = c - '0';
                else if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
                else if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
                else return false;
                cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(d);
                if (cp > 0x10FFFF) return false;
            }
            if (cp == 0) return false;
            put_utf8(cp, out);
        } else {
            return false;
        }
        i = semi + 1;
    }
    return true;
}

std::string escape(std::string_view in) {
    std::string out;
    out.reserve(in.size() + 8);
    for (char c : in) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

// ---- StreamParser -------------------------------------------------------------------------

StreamParser::StreamParser(std::size_t max_stanza_bytes) : max_stanza_(max_stanza_bytes) {}

void StreamParser::reset() {
    buf_.clear();
    pos_ = 0;
    stanza_start_ = 0;
    depth_ = 0;
    in_error_ = false;
    last_bytes_ = 0;
    header_ = Element{};
    stanza_ = Element{};
    open_.clear();
    error_.clear();
}

void StreamParser::feed(const char* data, std::size_t n) { buf_.append(data, n); }

void StreamParser::compact() {
    if (pos_ == 0) return;
    buf_.erase(0, pos_);
    pos_ = 0;
}

StreamParser::Event StreamParser::fail(std::string msg) {
    in_error_ = true;
    error_ = std::move(msg);
    return Event::Error;
}

// Finds the end of the token at pos_ (one past its last byte).
StreamParser::Tok StreamParser::scan(std::size_t& end) {
    const std::size_t n = buf_.size();
    if (pos_ >= n) return Tok::Incomplete;
    const char* b = buf_.data();
    if (b[pos_] != '<') {
        const void* lt = std::memchr(b + pos_, '<', n - pos_);
        if (!lt) return Tok::Incomplete;
        end = static_cast<std::size_t>(static_cast<const char*>(lt) - b);
        return Tok::Text;
    }
    std::string_view rest(b + pos_, n - pos_);
    auto until = [&](std::string_view term, Tok t) {
        auto k = rest.find(term, 1);
        if (k == std::string_view::npos) return Tok::Incomplete;
        end = pos_ + k + term.size();
        return t;
    };
    if (rest.size() < 2) return Tok::Incomplete;
    if (rest[1] == '?') return until("?>", Tok::Skip);
    if (rest[1] == '!') {
        if (rest.size() < 9) return Tok::Incomplete;
        if (rest.starts_with("<!--")) return until("-->", Tok::Skip);
        if (rest.starts_with("<![CDATA[")) return until("]]>", Tok::Text);
        return Tok::Bad;
    }
    if (rest[1] == '/') return until(">", Tok::Close);
    char quote = 0;
    for (std::size_t k = 1; k < rest.size(); ++k) {
        char c = rest[k];
        if (quote) {
            if (c == quote) quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '>') {
            end = pos_ + k + 1;
            return rest[k - 1] == '/' ? Tok::Empty : Tok::Open;
        }
    }
    return Tok::Incomplete;
}

bool StreamParser::parse_tag(std::string_view tag, Element& out, bool& self_closing, std::string& err) {
    // tag: "<name attr='v' ...>" or ".../>"
    tag.remove_prefix(1);
    tag.remove_suffix(1);
    self_closing = !tag.empty() && tag.back() == '/';
    if (self_closing) tag.remove_suffix(1);
    std::size_t i = 0;
    while (i < tag.size() && name_char(tag[i])) ++i;
    if (i == 0) {
        err = "tag without a name";
        return false;
    }
    out.name.assign(tag.substr(0, i));
    while (true) {
        while (i < tag.size() && is_space(tag[i])) ++i;
        if (i >= tag.size()) return true;
        std::size_t k0 = i;
        while (i < tag.size() && name_char(tag[i])) ++i;
        if (i == k0) {
            err = "bad attribute in <" + out.name + ">";
            return false;
        }
        std::string key(tag.substr(k0, i - k0));
        while (i < tag.size() && is_space(tag[i])) ++i;
        if (i >= tag.size() || tag[i] != '=') {
            err = "attribute " + key + " without a value";
            return false;
        }
        ++i;
        while (i < tag.size() && is_space(tag[i])) ++i;
        if (i >= tag.size() || (tag[i] != '"' && tag[i] != '\'')) {
            err = "attribute " + key + " value not quoted";
            return false;
        }
        char q = tag[i++];
        std::size_t v0 = i;
        while (i < tag.size() && tag[i] != q) ++i;
        if (i >= tag.size()) {
            err = "unterminated attribute " + key;
            return false;
        }
        std::string value;
        if (!decode_entities(tag.substr(v0, i - v0), value)) {
            err = "bad entity in attribute " + key;
            return false;
        }
        ++i;
        if (out.attr(key)) {
            err = "duplicate attribute " + key;
            return false;
        }
        out.attrs.emplace_back(std::move(key), std::move(value));
        if (i < tag.size() && !is_space(tag[i])) {
            err = "no space between attributes of <" + out.name + ">";
            return false;
        }
    }
}

StreamParser::Event StreamParser::next() {
    if (in_error_) return Event::Error;
    while (true) {
        std::size_t end = 0;
        Tok tok = scan(end);
        if (tok == Tok::Incomplete) {
            compact();
            if (buf_.size() > max_stanza_) return fail("token larger than the stanza limit");
            return Event::None;
        }
        if (tok == Tok::Bad) return fail("DOCTYPE or unknown markup");
        std::string_view t(buf_.data() + pos_, end - pos_);
        pos_ = end;
        if (depth_ >= 2) {
            last_bytes_ += t.size();
            if (last_bytes_ > max_stanza_) return fail("stanza larger than the limit");
        }
        switch (tok) {
            case Tok::Skip:
                continue;
            case Tok::Text: {
                bool cdata = t.starts_with("<![CDATA[");
                if (depth_ < 2) {
                    if (cdata || !all_space(t)) return fail("text outside a stanza");
                    continue;
                }
                std::string& dst = open_.back()->text;
                if (cdata) dst.append(t.substr(9, t.size() - 12));
                else if (!decode_entities(t, dst)) return fail("bad entity in text");
                continue;
            }
            case Tok::Open:
            case Tok::Empty: {
                Element el;
                bool self_closing = false;
                std::string err;
                if (!parse_tag(t, el, self_closing, err)) return fail(err);
                if (depth_ == 0) {
                    if (self_closing) return fail("self-closing stream root");
                    header_ = std::move(el);
                    depth_ = 1;
                    return Event::StreamOpen;
                }
                if (depth_ == 1) {
                    stanza_ = std::move(el);
                    last_bytes_ = t.size();
                    if (self_closing) return Event::Stanza;
                    open_.assign(1, &stanza_);
                    depth_ = 2;
                    continue;
                }
                Element* parent = open_.back();
                parent->children.push_back(std::move(el));
                if (!self_closing) {
                    open_.push_back(&parent->children.back());
                    ++depth_;
                }
                continue;
            }
            case Tok::Close: {
                std::string_view name = t.substr(2, t.size() - 3);
                while (!name.empty() && is_space(name.back())) name.remove_suffix(1);
                if (depth_ == 0) return fail("close tag outside the stream");
                if (depth_ == 1) {
                    if (name != header_.name) return fail("mismatched stream close");
                    depth_ = 0;
                    return Event::StreamClose;
                }
                if (name != open_.back()->name)
                    return fail("mismatched close tag </" + std::string(name) + ">");
                open_.pop_back();
                if (--depth_ == 1) return Event::Stanza;
                continue;
            }
            default:
                return fail("internal: unexpected token");
        }
    }
}

}  // namespace xs::loadgen::xml
