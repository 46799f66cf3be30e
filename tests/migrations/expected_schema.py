"""The guide's schema (sections 2.3, 5.1, 7.1, 11.1), written out independently of the models.

Columns: (type, nullable, default). Prisma's ``String`` is ``text``, ``DateTime`` is
``timestamp with time zone``, ``Json`` is ``jsonb``; ids are ``uuid`` filled by
``gen_random_uuid()``. Required relations without ``onDelete`` get Prisma's defaults
(``ON DELETE RESTRICT ON UPDATE CASCADE``); ``Cascade`` ones cascade both ways.
"""

UUID = ("uuid", False, "gen_random_uuid()")
NOW = ("timestamp with time zone", False, "now()")
TEXT = ("text", False, None)
TEXT_NULL = ("text", True, None)
JSONB_NULL = ("jsonb", True, None)
MONEY = ("numeric(10,2)", False, None)

COLUMNS = {
    "users": {
        "id": UUID, "email": TEXT, "password_hash": TEXT, "name": TEXT,
        "role": ('"UserRole"', False, None),
        "email_verified": ("boolean", False, "false"),
        "deleted_at": ("timestamp with time zone", True, None),
        "created_at": NOW, "updated_at": NOW,
    },
    "refresh_tokens": {
        "id": UUID, "user_id": ("uuid", False, None), "token": TEXT,
        "expires_at": ("timestamp with time zone", False, None), "created_at": NOW,
    },
    "payments": {
        "id": UUID, "user_id": ("uuid", False, None), "amount": MONEY,
        "currency": ("text", False, "'USD'::text"),
        "status": ('"PaymentStatus"', False, None), "type": ('"PaymentType"', False, None),
        "description": TEXT_NULL, "metadata": JSONB_NULL, "created_at": NOW, "updated_at": NOW,
    },
    "payment_transactions": {
        "id": UUID, "payment_id": ("uuid", False, None), "transaction_type": TEXT,
        "amount": MONEY, "status": TEXT, "metadata": JSONB_NULL, "created_at": NOW,
    },
    "audit_logs": {
        "id": UUID, "user_id": ("uuid", True, None), "action": TEXT, "resource_type": TEXT_NULL,
        "resource_id": TEXT_NULL, "details": JSONB_NULL, "ip_address": TEXT_NULL,
        "user_agent": TEXT_NULL, "created_at": NOW,
    },
    "system_config": {
        "key": TEXT, "value": ("jsonb", False, None), "description": TEXT_NULL,
        "updated_at": NOW, "updated_by": TEXT_NULL,
    },
    "user_profiles": {
        "id": UUID, "user_id": ("uuid", False, None), "avatar_url": TEXT_NULL,
        "phone": TEXT_NULL, "address": TEXT_NULL, "bio": TEXT_NULL, "preferences": JSONB_NULL,
        "created_at": NOW, "updated_at": NOW,
    },
    "devices": {
        "id": UUID, "user_id": ("uuid", False, None), "device_id": TEXT,
        "device_name": TEXT_NULL, "device_type": TEXT_NULL, "last_active_at": NOW,
        "created_at": NOW,
    },
    "sessions": {
        "id": UUID, "user_id": ("uuid", False, None), "device_id": ("uuid", False, None),
        "refresh_token_id": ("uuid", True, None), "ip_address": TEXT_NULL,
        "user_agent": TEXT_NULL, "expires_at": ("timestamp with time zone", False, None),
        "created_at": NOW,
    },
}

# Beyond the guide: each service database keeps the idempotency keys of its writes.
KEY_TABLES = [f"{service}_idempotency_keys" for service in ("auth", "admin", "profile",
                                                            "payments")]
COLUMNS |= {table: {
    "key": TEXT, "operation": TEXT, "request_hash": TEXT, "result": JSONB_NULL,
    "created_at": NOW, "expires_at": ("timestamp with time zone", False, None),
} for table in KEY_TABLES}

PRIMARY_KEYS = {table: "id" for table in COLUMNS} | {"system_config": "key"} | {
    table: "key" for table in KEY_TABLES}

UNIQUE = {
    ("users", "users_email_key"): "email",
    ("refresh_tokens", "refresh_tokens_token_key"): "token",
    ("user_profiles", "user_profiles_user_id_key"): "user_id",
    ("devices", "devices_device_id_key"): "device_id",
}

INDEXES = {
    "users": {"users_email_idx": "email", "users_role_idx": "role",
              "users_deleted_at_idx": "deleted_at"},
    "refresh_tokens": {"refresh_tokens_user_id_idx": "user_id",
                       "refresh_tokens_token_idx": "token"},
    "payments": {"payments_user_id_idx": "user_id", "payments_status_idx": "status",
                 "payments_created_at_idx": "created_at",
                 "payments_user_id_status_idx": "user_id, status"},
    "payment_transactions": {"payment_transactions_payment_id_idx": "payment_id"},
    "audit_logs": {"audit_logs_user_id_idx": "user_id", "audit_logs_created_at_idx": "created_at",
                   "audit_logs_action_idx": "action"},
    "system_config": {},
    "user_profiles": {"user_profiles_user_id_idx": "user_id"},
    "devices": {"devices_user_id_idx": "user_id", "devices_device_id_idx": "device_id"},
    "sessions": {"sessions_user_id_idx": "user_id", "sessions_device_id_idx": "device_id",
                 "sessions_expires_at_idx": "expires_at"},
} | {table: {f"{table}_expires_at_idx": "expires_at"} for table in KEY_TABLES}

CASCADE = "ON UPDATE CASCADE ON DELETE CASCADE"
RESTRICT = "ON UPDATE CASCADE ON DELETE RESTRICT"
FOREIGN_KEYS = {
    ("refresh_tokens", "refresh_tokens_user_id_fkey"): ("user_id", "users(id)", CASCADE),
    ("payments", "payments_user_id_fkey"): ("user_id", "users(id)", RESTRICT),
    ("payment_transactions", "payment_transactions_payment_id_fkey"):
        ("payment_id", "payments(id)", CASCADE),
    ("user_profiles", "user_profiles_user_id_fkey"): ("user_id", "users(id)", CASCADE),
    ("devices", "devices_user_id_fkey"): ("user_id", "users(id)", CASCADE),
    ("sessions", "sessions_user_id_fkey"): ("user_id", "users(id)", CASCADE),
    ("sessions", "sessions_device_id_fkey"): ("device_id", "devices(id)", CASCADE),
}

ENUMS = {
    "UserRole": ["ADMIN", "CUSTOMER", "VENDOR"],
    "PaymentStatus": ["pending", "initiated", "processing", "completed", "failed", "cancelled"],
    "PaymentType": ["initiate", "payment"],
}

VIEW_COLUMNS = ["user_id", "email", "role", "total_payments", "total_amount", "avg_amount"]
UPDATED_AT_TABLES = {"users", "payments", "system_config", "user_profiles"}
