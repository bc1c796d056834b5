"""Tokenizer, comments, quotes, braces, conditionals and $PARAMETER substitution."""

from __future__ import annotations

from hacc.runtime.kaconf.diagnostics import DiagnosticSink, SourceLoc
from hacc.runtime.kaconf.lexer import _strip_comment_quoted, _tokenize_quoted, expand_braces, strip_comment, tokenize
from hypothesis import given, settings
from hypothesis import strategies as st
from kaconf_helpers import errors, instance_conf, lines, parse, warnings

LOC = SourceLoc("t.conf", 1)


def words(text: str) -> list[str]:
    return [t.text for t in tokenize(text, LOC, DiagnosticSink())]


def test_comments_bang_and_hash_anywhere_but_not_in_quotes() -> None:
    assert strip_comment("priority 100 # high") == "priority 100 "
    assert strip_comment("priority 100! high") == "priority 100"
    assert strip_comment('script "echo a#b!c" # real comment') == 'script "echo a#b!c" '
    assert strip_comment("! whole line") == ""


def test_quoted_strings_join_and_keep_spaces() -> None:
    assert words('abcd" efg h jkl "mnop') == ["abcd efg h jkl mnop"]
    assert words('abcd "efg h jkl" mnop') == ["abcd", "efg h jkl", "mnop"]
    assert words("script 'killall -0 haproxy'") == ["script", "killall -0 haproxy"]


def test_quoted_escapes() -> None:
    assert words(r'"a\tb" "\x41\102" "\"q\"" "\\"') == ["a\tb", "AB", '"q"', "\\"]


def test_braces_split_even_when_glued_and_quoted_brace_is_a_word() -> None:
    assert words("vrrp_instance X{") == ["vrrp_instance", "X", "{"]
    assert words("192.0.2.1}}") == ["192.0.2.1", "}", "}"]
    toks = tokenize('"{" x', LOC, DiagnosticSink())
    assert toks[0].text == "{" and not toks[0].is_open


def test_unterminated_quote_warns_with_line() -> None:
    result = parse('vrrp_script s {\n    script "/bin/true\n}\n')
    assert 't.conf:2: warning: unterminated quoted string (missing ")' in lines(result)


def test_brace_on_same_line_next_line_and_one_line_blocks_give_same_model() -> None:
    same = parse(instance_conf())
    next_line = parse(
        "vrrp_instance VI_1\n{\n interface eth0\n virtual_router_id 51\n virtual_ipaddress\n {\n 192.0.2.1/24\n }\n}\n"
    )
    one_line = parse("vrrp_instance VI_1 { interface eth0\nvirtual_router_id 51\nvirtual_ipaddress { 192.0.2.1/24 }}\n")
    assert same.ok and next_line.ok and one_line.ok, (lines(same), lines(next_line), lines(one_line))
    assert same.config == next_line.config == one_line.config
    assert same.config.vrrp_instances[0].virtual_ipaddress[0].address == "192.0.2.1/24"


def test_tokens_keep_file_and_line() -> None:
    result = parse("\n\n" + instance_conf("priority 999\n"))
    # instance opens on line 3; `priority` is the 8th line of the block text -> line 9
    assert errors(result) == ["t.conf:9: priority: 999 is outside 1..255"]


def test_parameters_defined_and_substituted_both_forms() -> None:
    result = parse(
        """\
        $VRID=42
        $NET=192.0.2
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id $VRID
            virtual_ipaddress {
                ${NET}.5/24
            }
        }
        """
    )
    assert result.ok, lines(result)
    inst = result.config.vrrp_instances[0]
    assert inst.virtual_router_id == 42
    assert inst.virtual_ipaddress[0].address == "192.0.2.5/24"


def test_parameter_substitution_is_recursive_and_late_bound() -> None:
    result = parse(
        """\
        $BASE=192.0.2.${SUB}
        $SUB=7
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 1
            virtual_ipaddress {
                ${BASE}/24
            }
        }
        """
    )
    assert result.config.vrrp_instances[0].virtual_ipaddress[0].address == "192.0.2.7/24"


def test_dollar_name_needs_whitespace_after_it_to_be_a_reference() -> None:
    # `$X/24` is not a reference in keepalived (only `$X` + whitespace or `${X}`): kept literal, no warning
    result = parse("$X=1\n" + instance_conf('notify_master "/bin/echo $X/24"\n'))
    assert result.config.vrrp_instances[0].notify_master == "/bin/echo $X/24"
    assert not any("$X" in w for w in warnings(result))


def test_undefined_parameter_stays_literal_with_warning() -> None:
    result = parse(instance_conf("authentication {\n    auth_type PASS\n    auth_pass $VRRP_PASS\n}\n"))
    assert "t.conf:9: warning: parameter $VRRP_PASS is not defined; it is kept as literal text" in lines(result)
    # keepalived would authenticate with the literal "$VRRP_PA" (a missing secrets file = split brain): refused
    assert not result.ok
    assert (
        "t.conf:7: auth_pass '$VRRP_PASS' uses an undefined parameter: is the node-local secrets file missing?"
        in errors(result)
    )
    braced = parse(instance_conf("notify_master ${NOPE}\n"))
    assert "t.conf:7: warning: parameter $NOPE is not defined; it is kept as literal text" in lines(braced)


def test_self_referencing_parameter_is_an_error_not_a_hang() -> None:
    result = parse("$A=x${A}\nrouter_id ${A}\n")
    assert "t.conf:2: parameter substitution does not terminate (a parameter refers to itself?)" in errors(result)


def test_multiline_parameter_expands_to_several_lines() -> None:
    result = parse(
        """\
        $INST= \\
        vrrp_instance VI_${N} { \\
            interface eth0 \\
            virtual_router_id ${N} \\
            virtual_ipaddress { \\
                192.0.2.${N}/24 \\
            } \\
        }
        $N=1
        $INST
        $N=2
        $INST
        """
    )
    assert result.ok, lines(result)
    assert [(i.name, i.virtual_router_id) for i in result.config.vrrp_instances] == [("VI_1", 1), ("VI_2", 2)]


def test_builtin_parameters() -> None:
    result = parse("global_defs {\n router_id ${_INSTANCE}${_HASH}x\n}\n", config_id="lb7")
    assert result.config.global_defs.router_id == "lb7#x"


def test_conditional_lines_follow_config_id() -> None:
    text = instance_conf("@lb1 priority 200\n@lb2 priority 50\n@^lb1 nopreempt\n")
    lb1 = parse(text, config_id="lb1").config.vrrp_instances[0]
    lb2 = parse(text, config_id="lb2").config.vrrp_instances[0]
    other = parse(text, config_id="lb3").config.vrrp_instances[0]
    assert (lb1.priority, lb1.nopreempt) == (200, False)
    assert (lb2.priority, lb2.nopreempt) == (50, True)
    assert (other.priority, other.nopreempt) == (100, True)


def test_brace_expansion_for_include_patterns() -> None:
    assert expand_braces("{a/{,c,d},b}.conf") == ["a/.conf", "a/c.conf", "a/d.conf", "b.conf"]
    assert expand_braces("plain.conf") == ["plain.conf"]
    assert expand_braces("{single}.conf") == ["{single}.conf"]


# the fast paths for lines without quotes must split exactly as the character loops do
_UNQUOTED_TEXT = st.text(st.sampled_from(list("ab1 {}#!\t\v\f\x1c\x85\xa0\u2028\u3000x=$\\@.")), max_size=40)


@settings(max_examples=500, deadline=None)
@given(_UNQUOTED_TEXT)
def test_unquoted_fast_paths_agree_with_the_character_loops(text: str) -> None:
    assert strip_comment(text) == _strip_comment_quoted(text)
    fast = [(t.text, t.quoted) for t in tokenize(text, LOC, DiagnosticSink())]
    assert fast == [(t.text, t.quoted) for t in _tokenize_quoted(text, LOC, DiagnosticSink())]
