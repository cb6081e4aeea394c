// Command-line helpers shared by `otus` and `otusctl`.

/**
 * yargs reads a lone `-` as a positional argument, not as the value of the
 * flag before it (`--out -` fails with "Unknown argument: -"): for the given
 * flags, `FLAG -` becomes `FLAG=-`.
 */
export function dashValues(args: string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (flags.includes(args[i]!) && args[i + 1] === '-') out.push(`${args[i++]}=-`);
    else out.push(args[i]!);
  }
  return out;
}
