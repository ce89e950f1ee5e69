// The start order derived from what each daemon needs: waves of daemons whose needs are all in
// earlier waves. A need that is not declared, or a cycle, is a programming error caught at start.

export function startWaves(declarations: ReadonlyArray<{ name: string; needs: string[] }>): string[][] {
  const names = new Set(declarations.map((d) => d.name));
  for (const { name, needs } of declarations) {
    for (const need of needs) if (!names.has(need)) throw new Error(`daemon ${name} needs ${need}, which is not declared`);
  }
  const waves: string[][] = [];
  const placed = new Set<string>();
  while (placed.size < declarations.length) {
    const wave = declarations.filter((d) => !placed.has(d.name) && d.needs.every((need) => placed.has(need))).map((d) => d.name);
    if (wave.length === 0) {
      const left = declarations.filter((d) => !placed.has(d.name)).map((d) => d.name);
      throw new Error(`daemons ${left.join(', ')} need each other: no start order exists`);
    }
    for (const name of wave) placed.add(name);
    waves.push(wave);
  }
  return waves;
}
