"use strict";
// A CommonJS Nest 11 app that uses nestjs-etcd-lock as an installed npm package. It is written
// the way `tsc` (module commonjs, experimentalDecorators, emitDecoratorMetadata) emits a small
// TypeScript app: the __decorate / __metadata / __param helpers, design:paramtypes for
// constructor injection. So it needs no build step, and `require('nestjs-etcd-lock')` is a real
// require() of the ESM package (require(esm), Node >= 20.19) from a CJS Nest 11 app.
// Run by test/compat-nest11.spec.ts from a temp copy with its own node_modules.
// Env: ETCD_ENDPOINTS (comma-separated), LOCK_PREFIX, DATA_PREFIX.
// Sends { port, nestVersion, lockPath, commonPath } over IPC once listening.
var __decorate = (this && this.__decorate) || function (decorators, target, key, desc) {
    var c = arguments.length, r = c < 3 ? target : desc === null ? desc = Object.getOwnPropertyDescriptor(target, key) : desc, d;
    if (typeof Reflect === "object" && typeof Reflect.decorate === "function") r = Reflect.decorate(decorators, target, key, desc);
    else for (var i = decorators.length - 1; i >= 0; i--) if (d = decorators[i]) r = (c < 3 ? d(r) : c > 3 ? d(target, key, r) : d(target, key)) || r;
    return c > 3 && r && Object.defineProperty(target, key, r), r;
};
var __metadata = (this && this.__metadata) || function (k, v) {
    if (typeof Reflect === "object" && typeof Reflect.metadata === "function") return Reflect.metadata(k, v);
};
var __param = (this && this.__param) || function (paramIndex, decorator) {
    return function (target, key) { decorator(target, key, paramIndex); }
};
Object.defineProperty(exports, "__esModule", { value: true });
exports.AppModule = exports.OrdersController = exports.JobsService = exports.Ledger = void 0;
require("reflect-metadata");
const common_1 = require("@nestjs/common");
const core_1 = require("@nestjs/core");
const etcd3_1 = require("etcd3");
const rxjs_1 = require("rxjs");
const promises_1 = require("node:timers/promises");
const nestjs_etcd_lock_1 = require("nestjs-etcd-lock");

const ETCD = Symbol('ETCD');
const DATA_PREFIX = Symbol('DATA_PREFIX');
const endpoints = process.env.ETCD_ENDPOINTS.split(',');

/** An unsafe read, pause, write counter in etcd: only mutual exclusion keeps it exact. */
let Ledger = class Ledger {
    constructor(etcd, prefix, locks) {
        this.etcd = etcd;
        this.prefix = prefix;
        this.locks = locks;
    }
    async increment(counter) {
        const lock = this.locks.current();
        const read = Number((await this.etcd.get(`${this.prefix}${counter}`).string()) ?? '0');
        await (0, promises_1.setTimeout)(5);
        await this.etcd.put(`${this.prefix}${counter}`).value(String(read + 1));
        return { key: lock?.key ?? null, token: lock ? String(lock.token) : null, read };
    }
};
exports.Ledger = Ledger;
exports.Ledger = Ledger = __decorate([
    (0, common_1.Injectable)(),
    __param(0, (0, common_1.Inject)(ETCD)),
    __param(1, (0, common_1.Inject)(DATA_PREFIX)),
    __metadata("design:paramtypes", [etcd3_1.Etcd3, String, nestjs_etcd_lock_1.LockService])
], Ledger);

/**
 * A job that must run once across the cluster: a second call while it runs is skipped. The
 * run holds its lock until the service has seen a call of the same job skipped, so the
 * contention the test needs is certain, not a matter of timing.
 */
let JobsService = class JobsService {
    constructor(locks) {
        this.locks = locks;
        this.runs = 0;
        this.skipped = new rxjs_1.ReplaySubject();
        locks.events$.pipe((0, rxjs_1.filter)((e) => e.type === 'skipped')).subscribe((e) => this.skipped.next(e.key));
    }
    async run(name) {
        this.runs++;
        const key = this.locks.current().key;
        await (0, rxjs_1.firstValueFrom)(this.skipped.pipe((0, rxjs_1.filter)((skippedKey) => skippedKey === key)));
        return `${name} done`;
    }
};
exports.JobsService = JobsService;
__decorate([
    (0, nestjs_etcd_lock_1.WithLock)('job:<<0>>', { onContention: 'skip' }),
    __metadata("design:type", Function),
    __metadata("design:paramtypes", [String]),
    __metadata("design:returntype", Promise)
], JobsService.prototype, "run", null);
exports.JobsService = JobsService = __decorate([
    (0, common_1.Injectable)(),
    __param(0, (0, common_1.Inject)(nestjs_etcd_lock_1.LockService)),
    __metadata("design:paramtypes", [nestjs_etcd_lock_1.LockService])
], JobsService);

let OrdersController = class OrdersController {
    constructor(ledger, jobs) {
        this.ledger = ledger;
        this.jobs = jobs;
    }
    pay(id) {
        return this.ledger.increment(`paid-${id}`);
    }
    async runJob(name) {
        const result = await this.jobs.run(name);
        return { result: result ?? null, runs: this.jobs.runs };
    }
};
exports.OrdersController = OrdersController;
__decorate([
    (0, common_1.Post)('orders/:id/pay'),
    (0, nestjs_etcd_lock_1.WithLock)('order:<<id>>'),
    __param(0, (0, common_1.Param)('id')),
    __metadata("design:type", Function),
    __metadata("design:paramtypes", [String]),
    __metadata("design:returntype", Promise)
], OrdersController.prototype, "pay", null);
__decorate([
    (0, common_1.Post)('jobs/:name/run'),
    __param(0, (0, common_1.Param)('name')),
    __metadata("design:type", Function),
    __metadata("design:paramtypes", [String]),
    __metadata("design:returntype", Promise)
], OrdersController.prototype, "runJob", null);
exports.OrdersController = OrdersController = __decorate([
    (0, common_1.Controller)(),
    __metadata("design:paramtypes", [Ledger, JobsService])
], OrdersController);

let AppModule = class AppModule {
};
exports.AppModule = AppModule;
exports.AppModule = AppModule = __decorate([
    (0, common_1.Module)({
        imports: [
            nestjs_etcd_lock_1.EtcdLockModule.forRoot({ etcd: { hosts: endpoints }, prefix: process.env.LOCK_PREFIX, ttl: 1 }),
        ],
        controllers: [OrdersController],
        providers: [
            Ledger,
            JobsService,
            {
                provide: ETCD,
                useFactory: () => {
                    const client = new etcd3_1.Etcd3({ hosts: endpoints });
                    return Object.assign(client, { onApplicationShutdown: () => client.close() });
                },
            },
            { provide: DATA_PREFIX, useValue: process.env.DATA_PREFIX },
        ],
    })
], AppModule);

async function bootstrap() {
    const app = await core_1.NestFactory.create(AppModule, { logger: ['error', 'warn'], abortOnError: false });
    app.enableShutdownHooks(); // SIGTERM: close the app (the lock module revokes its lease), then exit
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address();
    process.send?.({
        port,
        nestVersion: require('@nestjs/core/package.json').version,
        lockPath: require.resolve('nestjs-etcd-lock'),
        commonPath: require.resolve('@nestjs/common'),
    });
}
// Nest's shutdown hook closes the app on SIGTERM, then raises SIGTERM again to end the process.
// This listener lets that second signal pass, so the process ends with code 0 only once the
// event loop is empty: app.close() really released the locks and closed every etcd client.
process.on('SIGTERM', () => {});
bootstrap().catch((err) => {
    console.error('compat-nest11 app failed to start:', err);
    process.exit(1);
});
