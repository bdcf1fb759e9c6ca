/** users: the accounts that own deployments and API keys. */
import { Table } from './table.js';

export interface User {
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
}

interface Row {
  id: string;
  name: string;
  created_at: number;
}

const toUser = (r: Row): User => ({ id: r.id, name: r.name, createdAt: r.created_at });

export class Users extends Table {
  insert(u: User): void {
    this.q('INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)').run(u.id, u.name, u.createdAt);
  }

  get(id: string): User | undefined {
    const r = this.q('SELECT * FROM users WHERE id = ?').get(id) as Row | undefined;
    return r && toUser(r);
  }

  byName(name: string): User | undefined {
    const r = this.q('SELECT * FROM users WHERE name = ?').get(name) as Row | undefined;
    return r && toUser(r);
  }

  /** list returns every user, oldest first. */
  list(): User[] {
    return (this.q('SELECT * FROM users ORDER BY created_at, id').all() as Row[]).map(toUser);
  }

  count(): number {
    return (this.q('SELECT count(*) AS n FROM users').get() as { n: number }).n;
  }
}
