import { BadRequestException, Body, ConflictException, Controller, Get, NotFoundException, Param, Post } from '@nestjs/common';
import { EtcdStore, type Account } from '../store/etcd.store.js';

@Controller('accounts')
export class AccountsController {
  constructor(private readonly store: EtcdStore) {}

  /** Create an account: `{ "id": "alice", "balance": 100000 }` (balance in cents). */
  @Post()
  async create(@Body() body: Partial<Account>): Promise<Account> {
    const { id, balance } = body ?? {};
    if (!id || !Number.isSafeInteger(balance) || balance! < 0) {
      throw new BadRequestException('expected { id, balance } with balance a non-negative integer (cents)');
    }
    const account = { id, balance: balance! };
    if (!(await this.store.createAccount(account))) throw new ConflictException(`account ${id} exists`);
    return account;
  }

  @Get(':id')
  async get(@Param('id') id: string): Promise<Account> {
    const account = await this.store.getAccount(id);
    if (!account) throw new NotFoundException(`no account ${id}`);
    return account;
  }
}
