"""The `%agent` and `%%chat` magics: argument parsing over the Python API, nothing more.

Settings are traitlets on AgyMagics, so `%config AgyMagics` lists them and an IPython config file can
set them (`c.AgyMagics.default_model = "gemini-2.5-pro"`).
"""
from __future__ import annotations

import argparse
import json
import shlex
from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display
from traitlets import Bool, Dict, Enum, Float, Unicode

from ..agent.backend import resolve_credentials
from ..agent.config import DEFAULT_MODEL
from ..agent.directory import AgentDirectory, agents
from ..agent.history import Usage
from ..agent.policies import Decision
from ..runtime.errors import AgyError, ConfigError
from .live_reply import DisplaySettings
from .safe_html import escape_inline
from .transcript import history_bundle
from .usage import DEFAULT_CONTEXT_LIMITS, DEFAULT_PRICES, usage_data
from .widgets import UsageView


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting (a magic must never exit the kernel)."""

    def error(self, message: str) -> None:
        raise UsageError(f"{message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> None:
        raise UsageError((message or "").strip() or self.format_usage().strip())


def chat_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%%chat", add_help=False, description="Talk to an agent; the cell body is the prompt.")
    parser.add_argument("name", nargs="?", help="the agent (default: the current default agent)")
    parser.add_argument("-o", metavar="VAR", help="store the reply text in the variable VAR")
    parser.add_argument("-i", "--interpolate", action="store_true",
                        help="replace {name} with the value of `name` from the namespace (other braces stay)")
    parser.add_argument("--background", action="store_true",
                        help="return at once; the reply streams into this cell with a Stop button")
    parser.add_argument("--no-thoughts", action="store_true", help="hide the model's thoughts")
    return parser


def agent_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%agent", add_help=False, description="Create, configure and manage agents.")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, add_help=False)

    create = command("create", "create an agent (the first one becomes the default)")
    create.add_argument("name")
    create.add_argument("--model", help="the Gemini model (default: AgyMagics.default_model)")
    system = create.add_mutually_exclusive_group()
    system.add_argument("--system", metavar="TEXT", help="the system instruction")
    system.add_argument("--system-var", metavar="VAR", help="take the system instruction from variable VAR")
    create.add_argument("--tools", metavar="f,g", help="callables from the namespace to offer as tools")
    create.add_argument("--builtin", metavar="NAME", nargs="+", help="builtin tools to enable")
    create.add_argument("--policy", choices=[d.value for d in Decision], default="ask",
                        help="what tool calls need: ask (approve each), allow, deny (default: ask)")
    create.add_argument("--temperature", type=float)
    create.add_argument("--max-output-tokens", type=int)
    create.add_argument("--thinking-budget", type=int)
    create.add_argument("--use", action="store_true", help="make it the default agent")
    command("list", "a table of the agents")
    command("use", "make NAME the default agent").add_argument("name")
    command("info", "settings and state of an agent").add_argument("name", nargs="?")
    history = command("history", "the agent's conversation, rendered")
    history.add_argument("name", nargs="?")
    history.add_argument("--last", type=int, metavar="N", help="only the last N turns")
    command("usage", "token usage and estimated cost").add_argument("name", nargs="?")
    command("clear", "forget an agent's conversation").add_argument("name")
    cancel = command("cancel", "cancel a running reply")
    cancel.add_argument("name", nargs="?")
    cancel.add_argument("--all", action="store_true", help="cancel every agent's reply")
    command("delete", "delete an agent").add_argument("name")
    save = command("save", "save an agent (settings and history, never the key) as JSON")
    save.add_argument("name")
    save.add_argument("path")
    load = command("load", "load an agent saved with %agent save")
    load.add_argument("path")
    load.add_argument("--name", help="load it under another name")
    load.add_argument("--tools", metavar="f,g", help="the callables its tools refer to")
    send = command("send", "send a message from one agent to another")
    send.add_argument("sender")
    send.add_argument("to")
    send.add_argument("message", nargs="+")
    command("config", "the effective settings (never the key)")
    return parser


def _help(parser: argparse.ArgumentParser) -> str:
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            text += "".join(f"\n{sub.format_help()}" for sub in action.choices.values())
    return text


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

    @cell_magic
    def chat(self, line: str, cell: str) -> None:
        from .cell import chat_cell_blocking  # in a kernel with autoawait the cell never gets here
        chat_cell_blocking(line, cell)

    # -- %agent ----------------------------------------------------------------------------------

    @line_magic
    def agent(self, line: str) -> Any:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"{exc}\n{agent_parser().format_usage().strip()}") from None
        parser = agent_parser()
        args = parser.parse_args(words)
        if args.command is None:
            raise UsageError(f"say what to do\n{parser.format_usage().strip()}")
        handler: Callable[[argparse.Namespace], Any] = getattr(self, f"_agent_{args.command}")
        try:
            return handler(args)
        except AgyError as exc:
            sub = parser._subparsers._group_actions[0].choices[args.command]  # the subcommand's usage
            raise UsageError(f"{exc}\n{sub.format_usage().strip()}") from None

    def _callables(self, names: str | None) -> list[Callable]:
        found = []
        for name in filter(None, (n.strip() for n in (names or "").split(","))):
            value = self.shell.user_ns.get(name)
            if not callable(value):
                raise ConfigError(f"--tools: {name!r} is not a callable in the namespace")
            found.append(value)
        return found

    def _agent_create(self, args: argparse.Namespace) -> None:
        system = args.system
        if args.system_var is not None:
            if args.system_var not in self.shell.user_ns:
                raise ConfigError(f"--system-var: no variable {args.system_var!r}")
            system = str(self.shell.user_ns[args.system_var])
        settings = {key: value for key, value in {
            "temperature": args.temperature, "max_output_tokens": args.max_output_tokens,
            "thinking_budget": args.thinking_budget, "enabled_tools": args.builtin}.items() if value is not None}
        agent = self.directory.create(args.name, use=args.use, model=args.model or self.default_model,
                                      system_instruction=system, tools=self._callables(args.tools),
                                      default_policy=Decision(args.policy), **settings)
        default = " (default)" if self.directory.default_name == agent.name else ""
        print(f"Created agent {agent.name!r} on {agent.config.model}{default}.")

    def _agent_list(self, args: argparse.Namespace) -> None:
        rows = self.directory.list()
        if not rows:
            print("No agents yet. Create one with: %agent create NAME")
            return
        header = "<tr><th></th><th>name</th><th>model</th><th>turns</th><th>tokens</th><th>state</th></tr>"
        body = "".join(f"<tr><td>{'★' if r.default else ''}</td><td>{escape_inline(r.name)}</td><td>{r.model}</td>"
                       f"<td>{r.turns}</td><td>{r.tokens:,}</td><td>{r.state}</td></tr>" for r in rows)
        plain = "\n".join(f"{'*' if r.default else ' '} {r.name:<16} {r.model:<24} {r.turns:>5} {r.tokens:>9,} "
                          f"{r.state}" for r in rows)
        display({"text/html": f"<table>{header}{body}</table>", "text/plain": plain}, raw=True)

    def _agent_use(self, args: argparse.Namespace) -> None:
        self.directory.use(args.name)
        print(f"{args.name!r} is now the default agent.")

    def _agent_info(self, args: argparse.Namespace) -> None:
        agent = self.directory.get(args.name)
        info = self.directory.info(agent.name)  # one describe command: state, counts, last error
        config = json.loads(agent.config.to_json())
        lines = [f"agent {agent.name} (id {agent.id}){' — default' if info.default else ''}",
                 f"state: {info.state}; turns: {info.turns}; tokens: {info.tokens:,}"]
        lines += [f"{key}: {value}" for key, value in config.items() if value not in (None, [], {})]
        if info.last_error:
            lines.append(f"last error: {info.last_error}")
        print("\n".join(lines))

    def _agent_history(self, args: argparse.Namespace) -> None:
        agent = self.directory.get(args.name)
        display(history_bundle(agent.history(), last_turns=args.last), raw=True)

    def _agent_usage(self, args: argparse.Namespace) -> UsageView:
        agent = self.directory.get(args.name)
        total = agent.usage()
        session = sum((self.directory.get(name).usage() for name in self.directory.names()), Usage())
        context = self.directory.info(agent.name).context_tokens
        data = usage_data(agent.config.model, [("This turn", agent.last_turn_usage()), ("This agent", total),
                                               ("Session", session)], context, self.prices, self.context_limits)
        return UsageView(data=data)

    def _agent_clear(self, args: argparse.Namespace) -> None:
        self.directory.get(args.name).clear()
        print(f"Cleared {args.name!r}'s conversation.")

    def _agent_cancel(self, args: argparse.Namespace) -> None:
        if args.all:
            busy = self.directory.cancel_all()
            print(f"Cancelled {busy} running {'reply' if busy == 1 else 'replies'}.")
            return
        agent = self.directory.get(args.name)
        busy = not agent.is_idle()
        agent.cancel()
        print(f"Cancelled {agent.name!r}'s reply." if busy else f"{agent.name!r} was not answering.")

    def _agent_delete(self, args: argparse.Namespace) -> None:
        self.directory.delete(args.name)
        print(f"Deleted {args.name!r}.")

    def _agent_save(self, args: argparse.Namespace) -> None:
        path = self.directory.save(args.name, args.path)
        print(f"Saved {args.name!r} to {path} (no credentials inside).")

    def _agent_load(self, args: argparse.Namespace) -> None:
        agent = self.directory.load(args.path, tools=self._callables(args.tools), name=args.name)
        print(f"Loaded {agent.name!r} ({agent.turn_count()} turns) from {args.path}.")

    def _agent_send(self, args: argparse.Namespace) -> None:
        sender = self.directory.get(args.sender)
        target = self.directory.get(args.to)
        sender.send(target, " ".join(args.message))
        print(f"Sent to {target.name!r}; it answers when idle (see %agent history {target.name}).")

    def _agent_config(self, args: argparse.Namespace) -> None:
        try:
            backend = resolve_credentials().describe()
        except AgyError as exc:
            backend = f"not configured: {exc}"
        runtime = self.directory.runtime
        lines = [f"backend: {backend}", f"runtime: {runtime.config.model_dump_json()}",
                 f"default agent: {self.directory.default_name or '(none)'}"]
        lines += [f"AgyMagics.{name} = {getattr(self, name)!r}" for name in sorted(self.trait_names(config=True))]
        print("\n".join(lines))


AgyMagics.agent.__doc__ = _help(agent_parser()) + """
Examples:
  %agent create analyst --model gemini-2.5-flash --tools load_csv --policy ask
  %agent list
  %agent history analyst --last 2
  %agent send analyst writer "Summarise your findings for the report"
"""
AgyMagics.chat.__doc__ = chat_parser().format_help() + """
Examples:
  %%chat analyst -o answer
  What are the three largest values in {df}?   (with -i, {df} becomes a compact summary of df)
"""
