"""The `%agent` and `%%chat` magics: argument parsing over the Python API, nothing more.

Settings are traitlets on AgyMagics, so `%config AgyMagics` lists them and an IPython config file can
set them (`c.AgyMagics.default_model = "gemini-2.5-pro"`).
"""
from __future__ import annotations

import argparse
import shlex
import json
from pathlib import Path
from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, kwds, magic_arguments
from IPython.display import display
from traitlets import Bool, Dict, Enum, Float, Unicode

from ..agent import builtin_tools
from ..agent.local.credentials import describe_default
from ..agent.config import DEFAULT_MODEL
from ..agent.directory import AgentDirectory, agents
from ..agent.persistence import current_notebook, forget_conversation, saved_conversations
from ..agent.policies import Decision
from ..runtime.errors import AgyError, ConfigError
from .live_reply import DisplaySettings
from .safe_html import escape_inline
from .transcript import history_bundle
from .usage import DEFAULT_CONTEXT_LIMITS, DEFAULT_PRICES, usage_report
from .widgets import UsageView

def _plain_usage() -> kwds:
    """"usage: %agent create ..." in errors and help (IPython's own formatter writes "::\n\n  %agent ...").

    A new decorator for each subcommand: IPython writes the description into the dict it holds."""
    return kwds(formatter_class=argparse.RawDescriptionHelpFormatter)


AGENT_DESCRIPTION = "Create, configure and manage agents."
AGENT_EXAMPLES = """
Examples:
  %agent create analyst --model gemini-2.5-flash --tools load_csv --policy ask
  %agent create offline --model local          (the embedded model: pip install 'agy_jupyter[local]')
  %agent list
  %agent history analyst --last 2
  %agent send analyst writer "Summarise your findings for the report"
"""
CHAT_EXAMPLES = """Examples:
  %%chat analyst -o answer
  What are the three largest values in {df}?   (with -i, {df} becomes a compact summary of df)

  %%chat classifier --map tickets -o labels --concurrency 16
  Classify this ticket as bug, question or praise: {text}   (once per row; {text} is the row's column)

The same from Python: `await agy_jupyter.display_chat(agent, prompt)`."""


HELP_FLAGS = {"-h", "--help"}  # answered by printing the help: argparse's own help action would exit


def parse_magic_line(magic: Any, line: str) -> argparse.Namespace:
    """Parse a line with the magic's `magic_arguments` parser; a bad line is one UsageError plus the usage."""
    parser = magic.parser
    try:
        # shell quoting, as users type it: IPython's parse_argstring splits without posix rules and keeps
        # the quotes ('--system "Be kind"' gave the instruction '"Be kind"')
        return parser.parse_args(shlex.split(line))
    except UsageError as exc:  # raised by IPython's MagicArgumentParser.error
        raise UsageError(f"{exc}\n{parser.format_usage().strip()}") from None
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"{exc}: {line.strip()!r}\n{parser.format_usage().strip()}") from None


@magics_class
class AgyMagics(Magics):
    """The agy_jupyter magics. Settings: `%config AgyMagics`."""

    default_model = Unicode(DEFAULT_MODEL, help="model for `%agent create` without --model").tag(config=True)
    prices = Dict(DEFAULT_PRICES, help="USD per million tokens by model prefix: "
                  "{model: {input, output, cached}}; estimates only").tag(config=True)
    context_limits = Dict(DEFAULT_CONTEXT_LIMITS, help="input token limit by model prefix").tag(config=True)
    coalesce_interval = Float(0.05, help="seconds between widget updates while streaming (0.05 = 20 Hz)").tag(config=True)
    text_interval = Float(1.0, help="seconds between plain-text updates when no widget front end is there").tag(config=True)
    render_grace = Float(2.0, help="seconds to wait for a front end to render a widget before "
                         "treating the run as headless").tag(config=True)
    approval_timeout = Float(300.0, help="seconds an Approve / Deny may wait; then it counts as Deny").tag(config=True)
    headless_approval = Enum(["deny", "allow"], "deny", help="what tool calls that need approval get when "
                             "nobody can click (nbclient, papermill, autoawait off)").tag(config=True)
    show_thoughts = Bool(True, help="show the model's thoughts (collapsed) in replies").tag(config=True)

    def __init__(self, shell: Any = None, directory: AgentDirectory | None = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        self.directory = directory if directory is not None else agents

    def display_settings(self) -> DisplaySettings:
        return DisplaySettings(coalesce_interval=self.coalesce_interval, text_interval=self.text_interval,
                               render_grace=self.render_grace, approval_timeout=self.approval_timeout,
                               headless_approval=self.headless_approval, show_thoughts=self.show_thoughts,
                               prices=dict(self.prices))

    # -- %%chat ----------------------------------------------------------------------------------

    @magic_arguments(name="%%chat")
    @kwds(formatter_class=argparse.RawDescriptionHelpFormatter, epilog=CHAT_EXAMPLES)
    @argument("name", nargs="?", help="the agent (default: the current default agent)")
    @argument("-o", metavar="VAR", help="store the reply text in the variable VAR")
    @argument("-i", "--interpolate", action="store_true",
              help="replace {name} with the value of `name` from the namespace (other braces stay)")
    @argument("--background", action="store_true",
              help="return at once; the reply streams into this cell with a Stop button")
    @argument("--no-thoughts", action="store_true", help="hide the model's thoughts")
    @argument("--map", metavar="DF", help="ask the cell once per row of the DataFrame (or list of dicts) DF, "
                                         "{column} filled from the row; -o stores the result frame")
    @argument("--concurrency", type=int, default=8, metavar="N", help="rows asked at once with --map (default 8)")
    @argument("--batch", action="store_const", const="batch", dest="mode", default="interactive",
              help="with --map: send the rows as one Batch API job (half the price; minutes to hours)")
    @argument("--auto", action="store_const", const="auto", dest="mode",
              help="with --map: a Batch API job for large tool-free maps, interactive turns otherwise")
    @cell_magic
    def chat(self, line: str, cell: str) -> None:
        """Talk to an agent; the cell body is the prompt."""
        from .cell import chat_cell_blocking  # in a kernel with autoawait the cell never gets here
        chat_cell_blocking(line, cell)

    # -- %agent ----------------------------------------------------------------------------------

    @line_magic
    def agent(self, line: str) -> Any:
        words = line.split(None, 1)
        if not words:
            raise UsageError(f"say what to do\n{agent_usage()}")
        if words[0] in HELP_FLAGS or words[0] == "help":
            print(AgyMagics.agent.__doc__)
            return None
        handler = SUBCOMMANDS.get(words[0])
        if handler is None:
            raise UsageError(f"invalid choice: {words[0]!r} (choose from {', '.join(SUBCOMMANDS)})\n{agent_usage()}")
        rest = words[1] if len(words) > 1 else ""
        if HELP_FLAGS & set(rest.split()):
            print(handler.parser.format_help())
            return None
        args = parse_magic_line(handler, rest)
        try:
            return handler(self, args)
        except AgyError as exc:
            raise UsageError(f"{exc}\n{handler.parser.format_usage().strip()}") from None

    def _callables(self, names: str | None) -> list[Callable]:
        found = []
        for name in filter(None, (n.strip() for n in (names or "").split(","))):
            value = self.shell.user_ns.get(name)
            if not callable(value):
                raise ConfigError(f"--tools: {name!r} is not a callable in the namespace")
            found.append(value)
        return found

    @magic_arguments(name="%agent create")
    @_plain_usage()
    @argument("name")
    @argument("--model", help="the Gemini model (default: AgyMagics.default_model); local for the embedded "
                              "model, local:/path/model.gguf, or openai:NAME with --base-url")
    @argument("--base-url", metavar="URL", help="an OpenAI-compatible server for --model openai:NAME, "
                                                "e.g. http://127.0.0.1:11434/v1")
    @argument("--system", metavar="TEXT", help="the system instruction")
    @argument("--system-var", metavar="VAR", help="take the system instruction from variable VAR")
    @argument("--tools", metavar="f,g", help="callables from the namespace to offer as tools")
    @argument("--builtin", metavar="files,run_command",
              help="builtin tools to offer: groups (notebook, files, shell) and single tool names")
    @argument("--workspace", metavar="DIR", help="root the file and shell tools are confined to "
                                                 "(default: the current directory, the notebook's)")
    @argument("--gemini-tools", metavar="search,url,code",
              help="Gemini's server tools: search (Google Search grounding), url (URL context), code (code execution)")
    @argument("--policy", choices=[d.value for d in Decision], default="ask",
              help="what tool calls need: ask (approve each), allow, deny (default: ask)")
    @argument("--mcp", metavar="NAME=TARGET", action="append",
              help='an MCP server whose tools the agent gets as NAME/tool: "NAME=python -m module" (stdio) '
                   'or NAME=http://host:port/mcp (HTTP); repeat for more')
    @argument("--temperature", type=float)
    @argument("--max-output-tokens", type=int)
    @argument("--thinking-budget", type=int)
    @argument("--use", action="store_true", help="make it the default agent")
    def _agent_create(self, args: argparse.Namespace) -> None:
        """create an agent (the first one becomes the default)"""
        system = args.system
        if args.system_var is not None:
            if system is not None:
                raise ConfigError("give --system or --system-var, not both")
            if args.system_var not in self.shell.user_ns:
                raise ConfigError(f"--system-var: no variable {args.system_var!r}")
            system = str(self.shell.user_ns[args.system_var])
        settings = {key: value for key, value in {
            "temperature": args.temperature, "max_output_tokens": args.max_output_tokens,
            "thinking_budget": args.thinking_budget, "enabled_tools": _builtin_names(args.builtin),
            "workspace": _workspace_dir(args.workspace), "gemini_tools": args.gemini_tools,
            "mcp_servers": args.mcp, "base_url": args.base_url}.items()
            if value is not None}
        agent = self.directory.create(args.name, use=args.use, model=args.model or self.default_model,
                                      system_instruction=system, tools=self._callables(args.tools),
                                      default_policy=Decision(args.policy), **settings)
        default = "; it is the default agent" if self.directory.default_name == agent.name else ""
        print(f"Created agent {agent.name!r} on {agent.config.model}{default}.")

    @magic_arguments(name="%agent list")
    @_plain_usage()
    @argument("--saved", action="store_true", help="the saved conversations %%agent restore can bring back, "
                                                    "by notebook")
    def _agent_list(self, args: argparse.Namespace) -> None:
        """a table of the agents"""
        if args.saved:
            display(saved_table(saved_conversations(), current_notebook()), raw=True)
            return
        rows = self.directory.list()
        if not rows:
            print("No agents yet. Create one with: %agent create NAME")
            return
        header = "<tr><th></th><th>name</th><th>model</th><th>turns</th><th>tokens</th><th>state</th></tr>"
        body = "".join(f"<tr><td>{'★' if r.default else ''}</td><td>{escape_inline(r.name)}</td>"
                       f"<td>{escape_inline(r.model)}</td><td>{r.turns}</td><td>{r.tokens:,}</td>"
                       f"<td>{escape_inline(r.state)}</td></tr>" for r in rows)
        plain = "\n".join(f"{'*' if default else ' '} {name:<16} {model:<24} {turns:>5} {tokens:>9} {state}"
                          for default, name, model, turns, tokens, state in
                          [(False, "name", "model", "turns", "tokens", "state"),
                           *((r.default, r.name, r.model, r.turns, f"{r.tokens:,}", r.state) for r in rows)])
        display({"text/html": f"<table>{header}{body}</table>", "text/plain": plain}, raw=True)

    @magic_arguments(name="%agent use")
    @_plain_usage()
    @argument("name")
    def _agent_use(self, args: argparse.Namespace) -> None:
        """make NAME the default agent"""
        self.directory.use(args.name)
        print(f"{args.name!r} is now the default agent.")

    @magic_arguments(name="%agent info")
    @_plain_usage()
    @argument("name", nargs="?")
    def _agent_info(self, args: argparse.Namespace) -> None:
        """settings and state of an agent"""
        agent = self.directory.get(args.name)
        info = self.directory.info(agent.name)  # one describe command: state, counts, last error
        config = json.loads(agent.config.to_json())
        lines = [f"agent {agent.name} (id {agent.id}){' — default' if info.default else ''}",
                 f"state: {info.state}; turns: {info.turns}; tokens: {info.tokens:,}"]
        lines += [f"{key}: {value}" for key, value in config.items() if value not in (None, [], {})]
        stuck = getattr(info, "stuck_calls", None) or []
        if stuck:
            lines.append(f"stuck tool calls ({len(stuck)}): " + ", ".join(
                f"{call['tool']} ({call['seconds']:.0f} s)" for call in stuck))
        if info.last_error:
            lines.append(f"last error: {info.last_error}")
        print("\n".join(lines))

    @magic_arguments(name="%agent history")
    @_plain_usage()
    @argument("name", nargs="?")
    @argument("--last", type=int, metavar="N", help="only the last N turns")
    def _agent_history(self, args: argparse.Namespace) -> None:
        """the agent's conversation, rendered"""
        agent = self.directory.get(args.name)
        display(history_bundle(agent.history(), last_turns=args.last), raw=True)

    @magic_arguments(name="%agent usage")
    @_plain_usage()
    @argument("name", nargs="?")
    def _agent_usage(self, args: argparse.Namespace) -> UsageView:
        """token usage, estimated cost and context fill"""
        agent = self.directory.get(args.name)
        return UsageView(data=usage_report(agent, self.directory, prices=self.prices, limits=self.context_limits))

    @magic_arguments(name="%agent clear")
    @_plain_usage()
    @argument("name")
    def _agent_clear(self, args: argparse.Namespace) -> None:
        """forget an agent's conversation"""
        self.directory.get(args.name).clear()
        print(f"Cleared {args.name!r}'s conversation.")

    @magic_arguments(name="%agent cancel")
    @_plain_usage()
    @argument("name", nargs="?")
    @argument("--all", action="store_true", help="cancel every agent's reply")
    def _agent_cancel(self, args: argparse.Namespace) -> None:
        """cancel a running reply"""
        if args.all:
            busy = self.directory.cancel_all()
            print(f"Cancelled {busy} running {'reply' if busy == 1 else 'replies'}.")
            return
        agent = self.directory.get(args.name)
        busy = not agent.is_idle()
        agent.cancel()
        print(f"Cancelled the reply of {agent.name!r}." if busy else f"{agent.name!r} was not answering.")

    @magic_arguments(name="%agent delete")
    @_plain_usage()
    @argument("name")
    def _agent_delete(self, args: argparse.Namespace) -> None:
        """delete an agent"""
        self.directory.delete(args.name)
        print(f"Deleted {args.name!r}.")

    @magic_arguments(name="%agent save")
    @_plain_usage()
    @argument("name")
    @argument("path")
    def _agent_save(self, args: argparse.Namespace) -> None:
        """save an agent (settings and history, never the key) as JSON"""
        path = self.directory.save(args.name, args.path)
        print(f"Saved {args.name!r} to {path} (no credentials inside).")

    @magic_arguments(name="%agent load")
    @_plain_usage()
    @argument("path")
    @argument("--name", help="load it under another name")
    @argument("--tools", metavar="f,g", help="the callables its tools refer to")
    def _agent_load(self, args: argparse.Namespace) -> None:
        """load an agent saved with %agent save"""
        agent = self.directory.load(args.path, tools=self._callables(args.tools), name=args.name)
        print(f"Loaded {agent.name!r} ({agent.turn_count()} turns) from {args.path}.")

    @magic_arguments(name="%agent restore")
    @_plain_usage()
    @argument("name", help="the agent whose saved conversation to bring back (see %%agent list --saved)")
    @argument("--name", dest="as_name", metavar="NEW", help="restore it under another name")
    @argument("--notebook", metavar="PATH", help="take it from another notebook's conversations")
    @argument("--id", type=int, metavar="N", help="the saved conversation with this id")
    @argument("--use", action="store_true", help="make it the default agent")
    def _agent_restore(self, args: argparse.Namespace) -> None:
        """bring back a saved conversation after a kernel restart (tools by name from the namespace)"""
        restored = self.directory.restore(args.name, namespace=self.shell.user_ns, notebook=args.notebook,
                                          conversation=args.id, as_name=args.as_name, use=args.use)
        print(restored.summary())

    @magic_arguments(name="%agent forget")
    @_plain_usage()
    @argument("name", nargs="?", help="the agent whose saved conversations to delete")
    @argument("--notebook", metavar="PATH", help="in another notebook (default: this one)")
    @argument("--all-notebooks", action="store_true", help="in every notebook")
    @argument("--id", type=int, metavar="N", help="only the saved conversation with this id")
    def _agent_forget(self, args: argparse.Namespace) -> None:
        """delete saved conversations from disk (a live agent of that name stops saving)"""
        count = forget_conversation(args.name, notebook=args.notebook, all_notebooks=args.all_notebooks,
                                    conversation=args.id)
        what = args.name if args.id is None else f"id {args.id}"
        print(f"Forgot {count} saved conversation{'s' if count != 1 else ''} of {what!r}.")

    @magic_arguments(name="%agent send")
    @_plain_usage()
    @argument("sender")
    @argument("to")
    @argument("message", nargs="+")
    def _agent_send(self, args: argparse.Namespace) -> None:
        """send a message from one agent to another"""
        sender = self.directory.get(args.sender)
        target = self.directory.get(args.to)
        sender.send(target, " ".join(args.message))
        print(f"Sent to {target.name!r}; it answers when idle (see %agent history {target.name}).")

    @magic_arguments(name="%agent config")
    @_plain_usage()
    def _agent_config(self, args: argparse.Namespace) -> None:
        """the effective settings (never the key)"""
        try:
            backend = describe_default()
        except AgyError as exc:
            backend = f"not configured: {exc}"
        runtime = self.directory.runtime
        lines = [f"backend: {backend}", f"runtime: {runtime.config.model_dump_json()}",
                 f"default agent: {self.directory.default_name or '(none)'}"]
        lines += [f"AgyMagics.{name} = {getattr(self, name)!r}" for name in sorted(self.trait_names(config=True))]
        print("\n".join(lines))

    @magic_arguments(name="%agent jobs")
    @_plain_usage()
    @argument("--refresh", action="store_true", help="ask the service for the state of jobs not yet ended")
    def _agent_jobs(self, args: argparse.Namespace) -> None:
        """the Batch API jobs submitted from any notebook (agy_jupyter.Batch.attach(NAME) picks one up)"""
        from ..agent.batch import Batch  # the batch modules load on first use
        display(jobs_table(Batch.jobs(refresh=args.refresh)), raw=True)


# The subcommands in the order of their definition: "create" -> AgyMagics._agent_create
SUBCOMMANDS: dict[str, Any] = {
    name.removeprefix("_agent_"): method for name, method in vars(AgyMagics).items() if name.startswith("_agent_")}


def agent_usage() -> str:
    return f"usage: %agent {{{','.join(SUBCOMMANDS)}}} ..."


def _agent_help() -> str:
    width = max(map(len, SUBCOMMANDS))
    summary = "\n".join(f"  {name:<{width}}  {handler.parser.description}" for name, handler in SUBCOMMANDS.items())
    details = "\n".join(handler.parser.format_help() for handler in SUBCOMMANDS.values())
    return f"{agent_usage()}\n\n{AGENT_DESCRIPTION}\n\nsubcommands:\n{summary}\n\n{details}{AGENT_EXAMPLES}"


AgyMagics.agent.__doc__ = _agent_help()


def _builtin_names(option: str | None) -> list[str] | None:
    """--builtin's comma-separated groups and tool names, checked here so a typo names what exists."""
    if option is None:
        return None
    names = [n.strip() for n in option.split(",") if n.strip()]
    try:
        builtin_tools.expand(names)
    except ConfigError as exc:
        raise ConfigError(f"--builtin: {exc.message} ({exc.hint})") from None
    return names


def _workspace_dir(option: str | None) -> str | None:
    if option is None:
        return None
    folder = Path(option).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"--workspace: {option!r} is not a directory")
    return str(folder)


def saved_table(saved: list[Any], here: str) -> dict[str, str]:
    """`%agent list --saved`: the saved conversations grouped by notebook, this notebook first."""
    if not saved:
        text = "No saved conversations."
        return {"text/html": f"<p>{text}</p>", "text/plain": text}
    notebooks = sorted({c.notebook for c in saved}, key=lambda n: (n != here, n))
    html, plain = ["<table><tr><th>id</th><th>name</th><th>model</th><th>messages</th><th>turns</th>"
                   "<th>saved (UTC)</th><th></th></tr>"], []
    for notebook in notebooks:
        label = f"{notebook}{' (this notebook)' if notebook == here else ''}"
        html.append(f'<tr><th colspan="7" style="text-align:left">{escape_inline(label)}</th></tr>')
        plain.append(label)
        for c in (c for c in saved if c.notebook == notebook):
            when, use = f"{c.updated:%Y-%m-%d %H:%M}", "in use" if c.in_use else ""
            html.append(f"<tr><td>{c.id}</td><td>{escape_inline(c.agent)}</td><td>{escape_inline(c.model)}</td>"
                        f"<td>{c.messages}</td><td>{c.turns}</td><td>{when}</td><td>{use}</td></tr>")
            plain.append(f"  {c.id:>4} {c.agent:<16} {c.model:<24} {c.messages:>5} msgs {c.turns:>4} turns {when} {use}")
    return {"text/html": "".join(html) + "</table>", "text/plain": "\n".join(plain)}


def jobs_table(jobs: list[Any]) -> dict[str, str]:
    """`%agent jobs`: name, agent, state, rows and when each batch job was submitted (UTC), newest first."""
    if not jobs:
        text = "No batch jobs."
        return {"text/html": f"<p>{text}</p>", "text/plain": text}
    from datetime import datetime, timezone
    cells = [(j.name, j.agent, j.state.removeprefix("JOB_STATE_"), str(j.rows),
              datetime.fromtimestamp(j.created, timezone.utc).strftime("%Y-%m-%d %H:%M")) for j in jobs]
    header = ("name", "agent", "state", "rows", "created (UTC)")
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    plain = "\n".join("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip()
                      for row in [header, *cells])
    html = "".join(f"<tr>{''.join(f'<td>{escape_inline(value)}</td>' for value in row)}</tr>" for row in cells)
    head = "".join(f"<th>{name}</th>" for name in header)
    return {"text/html": f"<table><tr>{head}</tr>{html}</table>", "text/plain": plain}


def load_ipython_extension(shell: Any) -> None:
    """What IPython runs on the first `%agent` or `%%chat` after `%load_ext agy_jupyter` declared them."""
    from . import registered_magics

    registered_magics(shell, load=True)
